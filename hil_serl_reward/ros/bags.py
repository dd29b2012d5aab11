"""rosbag2 recordings without `ros2 bag`: the pure-Python `rosbags` reader and writer.

Messages travel as CDR bytes and are (de)serialised with rclpy, so what comes out is the
same message class a subscription delivers.
"""
import contextlib
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Tuple

from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool

MESSAGE_TYPES: Dict[str, type] = {
    'sensor_msgs/msg/Image': Image,
    'sensor_msgs/msg/CompressedImage': CompressedImage,
    'std_msgs/msg/Bool': Bool,
}
_TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


def type_name(msg_type: type) -> str:
    return next(name for name, cls in MESSAGE_TYPES.items() if cls is msg_type)


class BagError(ValueError):
    """A recording that cannot be read: truncated, corrupt or crafted."""


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[AnyReader]:
    """rosbags' reader, with whatever it or the deserialiser raises on a damaged recording
    (sqlite errors, ruamel's RecursionError on a deeply nested metadata.yaml, ...) as one
    BagError line."""
    try:
        with AnyReader([Path(path)], default_typestore=_TYPESTORE) as reader:
            yield reader
    except Exception as exc:
        raise BagError(f"cannot read the recording '{path}': {type(exc).__name__}: "
                       f"{' '.join(str(exc).split())[:300]}") from None


def read_messages(path: Path, topics: Optional[Sequence[str]] = None
                  ) -> Iterator[Tuple[str, int, Any]]:
    """(topic, receive time ns, message) in recorded order, for the supported types."""
    with _reading(path) as reader:
        connections = [c for c in reader.connections
                       if c.msgtype in MESSAGE_TYPES and (topics is None or c.topic in topics)]
        for connection, timestamp, raw in reader.messages(connections=connections):
            yield connection.topic, timestamp, deserialize_message(
                bytes(raw), MESSAGE_TYPES[connection.msgtype])


def bag_topics(path: Path) -> Dict[str, str]:
    with _reading(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def write_bag(path: Path, records: Iterable[Tuple[str, int, Any]]) -> Path:
    """Write (topic, time ns, message) records to a new rosbag2 folder at `path`."""
    connections: Dict[str, Any] = {}
    with Writer(Path(path), version=8) as writer:
        for topic, timestamp, msg in records:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, type_name(type(msg)),
                                                           typestore=_TYPESTORE)
            writer.write(connections[topic], timestamp, serialize_message(msg))
    return Path(path)
