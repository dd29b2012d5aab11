"""Subscribe to N camera topics and deliver synchronised sets: the one small interface.

Uses message_filters.ApproximateTimeSynchronizer where it is installed (every ROS 2
install), else the project's ApproximateTimeSync (synchronizer.py). One camera needs no
synchroniser. Every message first passes `accept` (validation, stamp checks) in both
backends, so a malformed image never enters a set.
"""
from typing import Any, Callable, List, Sequence, Tuple

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.subscription import Subscription

from hil_serl_reward.synchronizer import ApproximateTimeSync

Accept = Callable[[int, Any], bool]
OnSet = Callable[[Tuple[Any, ...], Tuple[int, ...]], None]
StampOf = Callable[[Any], int]


class CameraSetSubscriber:
    """Owns the subscriptions; `backend` names what synchronises them."""

    def __init__(self, node: Node, topics: Sequence[str], msg_types: Sequence[type],
                 qos: QoSProfile, queue_size: int, slop_s: float, accept: Accept,
                 on_set: OnSet, stamp_of: StampOf, callback_group: Any = None,
                 prefer_message_filters: bool = True) -> None:
        self._node = node
        self._subscriptions: List[Any] = []
        self.sync = None
        if len(topics) == 1:
            self.backend = 'none (one camera)'
            self._subscribe_direct(node, topics[0], msg_types[0], qos, accept, on_set, stamp_of,
                                   callback_group)
            return
        message_filters = _import_message_filters() if prefer_message_filters else None
        if message_filters is not None:
            self.backend = 'message_filters'
            self._subscribe_message_filters(message_filters, node, topics, msg_types, qos,
                                            queue_size, slop_s, accept, on_set, stamp_of,
                                            callback_group)
        else:
            self.backend = ApproximateTimeSync.backend
            self.sync = ApproximateTimeSync(len(topics), queue_size, slop_s, on_set)
            for index, (topic, msg_type) in enumerate(zip(topics, msg_types)):
                def callback(msg: Any, index: int = index) -> None:
                    if accept(index, msg):
                        self.sync.add(index, stamp_of(msg), msg)
                self._subscriptions.append(node.create_subscription(
                    msg_type, topic, callback, qos, callback_group=callback_group))

    def close(self) -> None:
        """Destroys the subscriptions (a message_filters.Subscriber holds its one as `sub`)."""
        for entity in self._subscriptions:
            subscription = getattr(entity, 'sub', entity)
            if isinstance(subscription, Subscription):
                self._node.destroy_subscription(subscription)
        self._subscriptions = []

    def reset(self) -> None:
        """Drop what waits for a match. message_filters has no such call; the messages it
        holds are too far from new stamps to match and age out of its queues."""
        if self.sync is not None:
            self.sync.reset()

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
        self._subscriptions += sources + gates + [sync]


def _import_message_filters() -> Any:
    try:
        import message_filters
    except ImportError:
        return None
    return message_filters
