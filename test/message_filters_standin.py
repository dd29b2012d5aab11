"""A stand-in for ROS 2's `message_filters` Python package where it is not installed (this
venv), so that the branch every real ROS 2 install runs (camera_sync.py) is exercised over
DDS; conftest's `message_filters` fixture prefers the real package.

Written from the package's documented API, not its code: filters chain through
`SimpleFilter.registerCallback(cb, *args)` / `signalMessage(*msg)`; `Subscriber(node,
msg_type, topic, **kwargs)` passes every keyword on to `node.create_subscription`;
`ApproximateTimeSynchronizer(fs, queue_size, slop)` calls its callbacks with one message
per input, in the order of `fs`. The matching policy is borrowed from our synchroniser:
these tests check our wiring to the API, not message_filters' matching rule.
"""
import threading
from typing import Any, Callable, Dict, Sequence, Tuple

from hil_serl_reward.pipeline.stamps import stamp_to_ns
from hil_serl_reward.pipeline.synchronizer import ApproximateTimeSync


class SimpleFilter:
    def __init__(self) -> None:
        self.callbacks: Dict[int, Tuple[Callable[..., None], Tuple[Any, ...]]] = {}

    def registerCallback(self, cb: Callable[..., None], *args: Any) -> int:  # noqa: N802
        self.callbacks[len(self.callbacks)] = (cb, args)
        return len(self.callbacks) - 1

    def signalMessage(self, *msg: Any) -> None:  # noqa: N802
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    def __init__(self, node: Any, msg_type: type, topic: str, **kwargs: Any) -> None:
        super().__init__()
        kwargs.setdefault('qos_profile', 10)
        self.sub = node.create_subscription(msg_type, topic, self.signalMessage, **kwargs)


class ApproximateTimeSynchronizer(SimpleFilter):
    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int, slop: float) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._sync = ApproximateTimeSync(len(fs), queue_size, slop,
                                         lambda msgs, stamps: self.signalMessage(*msgs))
        for index, f in enumerate(fs):
            f.registerCallback(self.add, index)

    def add(self, msg: Any, index: int) -> None:
        with self._lock:
            self._sync.add(index, stamp_to_ns(msg.header.stamp), msg)
