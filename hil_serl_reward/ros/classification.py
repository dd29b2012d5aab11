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

import numpy as np

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
    """One `classification` message as the RL side sees it: binary (`probability` of success)
    or n-way (`probability` None; the classes' softmax scores in `scores`)."""

    stamp_ns: int
    frame_id: str
    probability: Optional[float]
    received_at: float      # time.monotonic() on arrival, for latency measurements
    scores: Tuple[Tuple[str, float], ...] = ()      # every hypothesis, in the message's order

    @property
    def n_way(self) -> bool:
        return self.probability is None

    def logits(self) -> np.ndarray:
        """hil-serl's `classifier(obs)` output (float32), recovered from the scores: binary,
        the log-odds of success (shape (1,)); n-way, the log-probabilities (shape (n,)), which
        differ from the logits by a constant that softmax and argmax ignore. The scores are
        the node's float32 probabilities, so the sigmoid / softmax of these logits gives them
        back within one float32 step; near p = 0.5 they are the model's logits to 1e-5, far
        from it less precise (|logit| 11: 1e-4), where no threshold rule looks. A score of 0
        or 1 gives an infinite logit, whose sigmoid or softmax is that score again."""
        with np.errstate(divide='ignore'):
            if not self.n_way:
                p = np.float64(self.probability)
                return np.array([np.log(p) - np.log1p(-p)], np.float32)
            return np.log(np.array([score for _, score in self.scores], np.float64)
                          ).astype(np.float32)


class NotAClassification(ValueError):
    """A `classification` message that is not a reward node's result (another publisher?):
    neither a `success`/`failure` pair nor n-way scores."""


def result_from_message(msg: Any, received_at: float) -> ClassificationResult:
    """The result in a reward node's message: binary when it holds `success` and `failure`,
    n-way when it holds at least three distinct classes whose scores sum to 1 (softmax)."""
    scores = tuple((h.class_id, float(h.score)) for h in msg.results)
    names = [name for name, _ in scores]
    stamp = stamp_to_ns(msg.header.stamp)
    if set(names) == {SUCCESS, FAILURE} and len(names) == 2:
        return ClassificationResult(stamp, msg.header.frame_id, dict(scores)[SUCCESS],
                                    received_at, scores)
    if (len(names) >= 3 and len(set(names)) == len(names)
            and abs(sum(score for _, score in scores) - 1.0) < 1e-4):
        return ClassificationResult(stamp, msg.header.frame_id, None, received_at, scores)
    raise NotAClassification(
        f"a classification stamped {stamp} is not a reward node's result: neither "
        f"'{SUCCESS}'/'{FAILURE}' nor n-way softmax scores (class ids: {names})")
