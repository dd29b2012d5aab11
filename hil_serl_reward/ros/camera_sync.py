"""Subscribe to N camera topics and deliver synchronised sets: the one small interface.

Uses message_filters.ApproximateTimeSynchronizer where it is installed (every ROS 2
install), else the project's ApproximateTimeSync (synchronizer.py). One camera needs no
synchroniser. Every message first passes `accept` (validation, stamp checks) in both
backends, so a malformed image never enters a set.
"""
import collections
import threading
from typing import Any, Callable, Deque, List, Sequence, Tuple

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.subscription import Subscription

from hil_serl_reward.pipeline.synchronizer import ApproximateTimeSync

Accept = Callable[[int, Any], bool]
OnSet = Callable[[Tuple[Any, ...], Tuple[int, ...]], None]
StampOf = Callable[[Any], int]


class UnmatchedFrames:
    """Counts, per camera, frames that entered the synchroniser and will never be in a set,
    from outside it, so both backends report the same numbers: a frame is unmatched once a
    set at or after its stamp went out without it, or once `queue_size` newer frames of its
    camera wait (both backends evict the oldest then)."""

    def __init__(self, cameras: int, queue_size: int) -> None:
        self._waiting: List[Deque[int]] = [collections.deque() for _ in range(cameras)]
        self._queue_size = queue_size
        self._lock = threading.Lock()
        self.counts = [0] * cameras

    def admitted(self, index: int, stamp: int) -> None:
        with self._lock:
            waiting = self._waiting[index]
            waiting.append(stamp)
            if len(waiting) > self._queue_size:
                waiting.popleft()
                self.counts[index] += 1

    def matched(self, stamps: Sequence[int]) -> None:
        newest = max(stamps)
        with self._lock:
            for index, (waiting, used) in enumerate(zip(self._waiting, stamps)):
                left = [s for s in waiting if s != used]
                self.counts[index] += sum(1 for s in left if s <= newest)
                self._waiting[index] = collections.deque(s for s in left if s > newest)

    def reset(self) -> None:
        with self._lock:
            for waiting in self._waiting:
                waiting.clear()


class CameraSetSubscriber:
    """Owns the subscriptions; `backend` names what synchronises them; `unmatched` counts
    frames that can no longer be in a set (None with one camera)."""

    def __init__(self, node: Node, topics: Sequence[str], msg_types: Sequence[type],
                 qos: QoSProfile, queue_size: int, slop_s: float, accept: Accept,
                 on_set: OnSet, stamp_of: StampOf, callback_group: Any = None,
                 prefer_message_filters: bool = True) -> None:
        self._node = node
        self._subscriptions: List[Any] = []     # the cameras' first, in their order
        self._cameras = len(topics)
        self.sync = None
        self._message_filters_sync = None
        self.unmatched = None
        if len(topics) == 1:
            self.backend = 'none (one camera)'
            self._subscribe_direct(node, topics[0], msg_types[0], qos, accept, on_set, stamp_of,
                                   callback_group)
            return
        unmatched = self.unmatched = UnmatchedFrames(len(topics), queue_size)

        def admit(index: int, msg: Any) -> bool:
            if not accept(index, msg):
                return False
            unmatched.admitted(index, stamp_of(msg))
            return True

        def emit(msgs: Tuple[Any, ...], stamps: Tuple[int, ...]) -> None:
            unmatched.matched(stamps)
            on_set(msgs, stamps)
        message_filters = _import_message_filters() if prefer_message_filters else None
        if message_filters is not None:
            self.backend = 'message_filters'
            self._subscribe_message_filters(message_filters, node, topics, msg_types, qos,
                                            queue_size, slop_s, admit, emit, stamp_of,
                                            callback_group)
        else:
            self.backend = ApproximateTimeSync.backend
            self.sync = ApproximateTimeSync(len(topics), queue_size, slop_s, emit)
            for index, (topic, msg_type) in enumerate(zip(topics, msg_types)):
                def callback(msg: Any, index: int = index) -> None:
                    if admit(index, msg):
                        self.sync.add(index, stamp_of(msg), msg)
                self._subscriptions.append(node.create_subscription(
                    msg_type, topic, callback, qos, callback_group=callback_group))

    @property
    def camera_subscriptions(self) -> List[Any]:
        """Each camera's subscription (an rclpy Subscription or a message_filters.Subscriber
        holding one as `sub`), in the order of `topics`; none once closed."""
        return self._subscriptions[:self._cameras]

    def close(self) -> None:
        """Destroys the subscriptions (a message_filters.Subscriber holds its one as `sub`)."""
        for entity in self._subscriptions:
            subscription = getattr(entity, 'sub', entity)
            if isinstance(subscription, Subscription):
                self._node.destroy_subscription(subscription)
        self._subscriptions = []

    def set_slop(self, slop_s: float) -> None:
        """Change the largest stamp spread of a set, in either backend."""
        if self.sync is not None:
            self.sync.set_slop(slop_s)
        elif self._message_filters_sync is not None:
            self._message_filters_sync.slop = Duration(seconds=slop_s)

    def reset(self) -> None:
        """Drop what waits for a match. message_filters has no such call; the messages it
        holds are too far from new stamps to match and age out of its queues."""
        if self.sync is not None:
            self.sync.reset()
        if self.unmatched is not None:
            self.unmatched.reset()

    def _subscribe_direct(self, node: Node, topic: str, msg_type: type, qos: QoSProfile,
                          accept: Accept, on_set: OnSet, stamp_of: StampOf,
                          callback_group: Any) -> None:
        def callback(msg: Any) -> None:
            if accept(0, msg):
                on_set((msg,), (stamp_of(msg),))
        self._subscriptions.append(node.create_subscription(
            msg_type, topic, callback, qos, callback_group=callback_group))

    def _subscribe_message_filters(self, message_filters: Any, node: Node,
                                   topics: Sequence[str], msg_types: Sequence[type],
                                   qos: QoSProfile, queue_size: int, slop_s: float,
                                   accept: Accept, on_set: OnSet, stamp_of: StampOf,
                                   callback_group: Any) -> None:
        class Gate(message_filters.SimpleFilter):
            """Passes on only the messages `accept` lets through."""

            def __init__(self, source: Any, index: int) -> None:
                super().__init__()
                self.index = index
                source.registerCallback(self.add)

            def add(self, msg: Any) -> None:
                if accept(self.index, msg):
                    self.signalMessage(msg)

        # qos by keyword: positional QoS raises TypeError on some releases (§6); Subscriber
        # passes its keywords on to create_subscription, the callback group included
        sources = [message_filters.Subscriber(node, msg_type, topic, qos_profile=qos,
                                              callback_group=callback_group)
                   for topic, msg_type in zip(topics, msg_types)]
        gates = [Gate(source, index) for index, source in enumerate(sources)]
        sync = message_filters.ApproximateTimeSynchronizer(gates, queue_size, slop_s)
        sync.registerCallback(lambda *msgs: on_set(msgs, tuple(stamp_of(m) for m in msgs)))
        self._message_filters_sync = sync
        self._subscriptions += sources + gates + [sync]


def _import_message_filters() -> Any:
    try:
        import message_filters
    except ImportError:
        return None
    return message_filters
