"""camera_sim: stamped sensor_msgs/Image sets for the configured camera keys, no hardware.

Sources: `scene` (generated; a disc moving into a target square, ground truth published
on `label_topic`), `folder` (<folder>/<key>/*.png|jpg, in name order) or `bag` (a rosbag2
recording replayed at its recorded pace, re-stamped to now, its topics published relative
to this node's namespace, once every image topic has a subscriber or `subscriber_wait`
seconds have passed). Each camera's stamp gets
independent jitter and the publish order is shuffled, as free-running cameras behave.
"""
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool

from hil_serl_reward.data.scenes import SyntheticScene
from hil_serl_reward.pipeline.image_conversion import (
    DEFAULT_MAX_PIXELS, image_file_to_rgb, rgb_to_msg)
from hil_serl_reward.ros.bags import MESSAGE_TYPES, bag_topics, read_messages
from hil_serl_reward.ros.node_main import run_node

SOURCES = ('scene', 'folder', 'bag')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')


class FolderSource:
    """Cycles through <folder>/<key>/ images; every key must have the same count. An image
    larger than `max_pixels` (from its header) or unreadable raises ImageError."""

    def __init__(self, folder: Path, keys: List[str], max_pixels: int = DEFAULT_MAX_PIXELS
                 ) -> None:
        self.max_pixels = max_pixels
        self.files = {}
        for key in keys:
            files = sorted(p for p in (folder / key).glob('*')
                           if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ValueError(f"no images in '{folder / key}' ({', '.join(IMAGE_SUFFIXES)})")
            self.files[key] = files
        counts = {k: len(v) for k, v in self.files.items()}
        if len(set(counts.values())) != 1:
            raise ValueError(f'cameras have different image counts: {counts}')
        self.length = next(iter(counts.values()))

    def frames(self, index: int) -> Dict[str, np.ndarray]:
        return {key: image_file_to_rgb(files[index % self.length], self.max_pixels)
                for key, files in self.files.items()}


class CameraSimulator(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('camera_sim', **kwargs)
        # What destroy_node stops, set before anything can fail: on Kilted, rclpy's shutdown
        # also destroys a node whose __init__ raised.
        self._stop = threading.Event()
        self._publishing = threading.Lock()     # held by a timer callback while it publishes
        self._replay_thread: Optional[threading.Thread] = None
        p = self.declare_parameter
        self.keys: List[str] = list(p('image_keys', ['wrist_1', 'front']).value)
        self.topics = {k: p(f'cameras.{k}.topic', f'{k}/image_raw').value for k in self.keys}
        self.rate = float(p('rate', 15.0).value)
        self.jitter = float(p('jitter', 0.005).value)
        self.encoding = p('encoding', 'rgb8').value
        self.source = p('source', 'scene').value
        width, height = int(p('width', 640).value), int(p('height', 480).value)
        folder, bag = p('folder', '').value, p('bag', '').value
        self.loop = bool(p('loop', True).value)
        reliability = p('reliability', 'reliable').value
        seed = int(p('seed', 0).value)
        self._random = random.Random(seed)
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got '{self.source}'")
        if self.rate <= 0:
            raise ValueError(f'rate must be > 0, got {self.rate}')
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT
                         if reliability == 'best_effort' else ReliabilityPolicy.RELIABLE)
        self.label_pub = self.create_publisher(Bool, p('label_topic', 'scene_success').value, 10)
        self.frames_published = 0
        if self.source == 'bag':
            subscriber_wait = float(p('subscriber_wait', 5.0).value)
            publishers = self._bag_publishers(Path(bag), qos)
            self._replay_thread = threading.Thread(
                target=self._replay, args=(Path(bag), publishers, subscriber_wait), daemon=True)
            self._replay_thread.start()
        else:
            self.publishers_by_key = {k: self.create_publisher(Image, self.topics[k], qos)
                                      for k in self.keys}
            self.scene = SyntheticScene(width, height, float(p('scene_period', 4.0).value),
                                        seed=seed)
            self.folder = FolderSource(Path(folder), self.keys) if self.source == 'folder' else None
            if self.folder is not None:
                self.folder.frames(0)           # an unreadable first image fails the start
            self._start = time.monotonic()
            self.create_timer(1.0 / self.rate, self._publish_set)
        self.get_logger().info(f'publishing {self.source} images for {self.keys} at '
                               f'{self.rate:g} Hz, jitter {self.jitter * 1e3:g} ms')

    def _stamp(self, base_ns: int) -> Any:
        """Up to `jitter` before the publish time: a camera stamps at exposure, before it
        publishes, never in the future (which would flatter every latency measured here)."""
        offset = self._random.uniform(0.0, self.jitter)
        return Time(nanoseconds=base_ns - int(offset * 1e9)).to_msg()

    def _publish_set(self) -> None:
        with self._publishing:
            if not self._stop.is_set():
                self._publish_frames(time.monotonic() - self._start)

    def _publish_frames(self, t: float) -> None:
        if self.folder is not None:
            if not self.loop and self.frames_published >= self.folder.length:
                return
            frames, label = self.folder.frames(self.frames_published), None
        else:
            frames = {k: self.scene.render(k, t) for k in self.keys}
            label = self.scene.success(t)
        base = self.get_clock().now().nanoseconds
        order = list(self.keys)
        self._random.shuffle(order)
        for key in order:
            msg = Image(**rgb_to_msg(frames[key], self.encoding))
            msg.header.stamp = self._stamp(base)
            msg.header.frame_id = f'{key}_optical_frame'
            self.publishers_by_key[key].publish(msg)
        if label is not None:
            self.label_pub.publish(Bool(data=label))
        self.frames_published += 1

    def _bag_publishers(self, bag: Path, qos: QoSProfile) -> Dict[str, Any]:
        """A publisher per replayed topic, made before the first message is sent: a
        subscriber has to match a publisher before it receives anything, so publishers made
        on the fly lost a recording's first frames."""
        topics = bag_topics(bag)                        # BagError (a ValueError) if bad
        return {topic: self.label_pub if MESSAGE_TYPES[name] is Bool
                else self.create_publisher(MESSAGE_TYPES[name], topic.lstrip('/'), qos)
                for topic, name in topics.items() if name in MESSAGE_TYPES}

    def _wait_for_subscribers(self, publishers: Dict[str, Any], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        unmatched = [topic for topic, pub in publishers.items() if pub is not self.label_pub]
        while unmatched and time.monotonic() < deadline and not self._stop.is_set():
            self._stop.wait(0.02)
            unmatched = [t for t in unmatched if publishers[t].get_subscription_count() == 0]
        if unmatched and not self._stop.is_set():
            self.get_logger().warning(f'replaying with no subscriber yet on {unmatched}')

    def _replay(self, bag: Path, publishers: Dict[str, Any], subscriber_wait: float) -> None:
        self._wait_for_subscribers(publishers, subscriber_wait)
        while not self._stop.is_set():
            first: Optional[Tuple[int, int]] = None
            for topic, recorded_ns, msg in read_messages(bag):
                now = self.get_clock().now().nanoseconds
                if first is None:
                    first = (recorded_ns, now)
                due = first[1] + (recorded_ns - first[0])
                if self._stop.wait(max(0.0, (due - now) / 1e9)):
                    return
                if hasattr(msg, 'header'):
                    stamp = Time.from_msg(msg.header.stamp).nanoseconds
                    msg.header.stamp = Time(nanoseconds=stamp - first[0] + first[1]).to_msg()
                publishers[topic].publish(msg)
                if isinstance(msg, (Image, CompressedImage)):
                    self.frames_published += 1
            if not self.loop:
                return

    def destroy_node(self) -> None:
        """Stops the replay, and waits out a timer callback still publishing on another
        executor thread, before the publishers go: a publish on a destroyed one raises."""
        self._stop.set()
        with self._publishing:
            pass
        if self._replay_thread is not None:
            self._replay_thread.join(timeout=5.0)
        super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    return run_node(CameraSimulator, 'camera_sim', (ValueError, OSError), args=args)


if __name__ == '__main__':
    sys.exit(main())
