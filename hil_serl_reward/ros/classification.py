"""The stamped result topic, `classification` (vision_msgs/msg/Classification), both ways:
the node builds it, the RL side (client.py) reads it. No JAX here: the client imports this.

vision_msgs' own definition asks for the header of the classified data, so the header is the
camera set's: stamp = the set's stamp (its newest frame), frame_id = the newest frame's unless
the node's `frame_id` parameter names one. One hypothesis per class: binary, `success` with
the classifier's probability and `failure` with one minus it; n-way, each of `class_names`
with its softmax probability, in the checkpoint's class order.
"""
import dataclasses
from typing import Any, Optional, Sequence, Tuple

from hil_serl_reward.pipeline.stamps import stamp_to_ns, write_stamp

SUCCESS = 'success'
FAILURE = 'failure'
TOPIC = 'classification'

try:
    from vision_msgs.msg import Classification, ObjectHypothesis
    UNAVAILABLE: Optional[str] = None
except ImportError as exc:      # a venv without our build of it, or a ROS 2 install without it
    Classification = ObjectHypothesis = None
    UNAVAILABLE = (f'vision_msgs is not importable ({exc}); install ros-<distro>-vision-msgs '
                   f'(rosdep does) or build the venv with make')


def newest_frame_id(messages: Sequence[Any]) -> str:
    """The frame_id of the newest message of a camera set (the one whose stamp the set has)."""
    return max(messages, key=lambda m: stamp_to_ns(m.header.stamp)).header.frame_id


def classification_message(stamp: int, frame_id: str, probability: float,
                           class_scores: Sequence[Tuple[str, float]] = ()) -> Any:
    """`class_scores` (n-way) replaces the binary pair."""
    scores = class_scores or ((SUCCESS, probability), (FAILURE, 1.0 - probability))
    msg = Classification(results=[ObjectHypothesis(class_id=name, score=score)
                                  for name, score in scores])
    write_stamp(msg.header.stamp, stamp)
    msg.header.frame_id = frame_id
    return msg


@dataclasses.dataclass(frozen=True)
class ClassificationResult:
    """One `classification` message as the RL side sees it."""

    stamp_ns: int
    frame_id: str
    probability: float
    received_at: float      # time.monotonic() on arrival, for latency measurements


class NotAClassification(ValueError):
    """A `classification` message without a `success` hypothesis (another publisher?)."""


def success_probability(msg: Any) -> float:
    for hypothesis in msg.results:
        if hypothesis.class_id == SUCCESS:
            return float(hypothesis.score)
    raise NotAClassification(
        f"no '{SUCCESS}' hypothesis in a classification stamped {stamp_to_ns(msg.header.stamp)} "
        f"(class ids: {[h.class_id for h in msg.results]})")
