"""The reward node's results for another Python process: an RL actor, a teleop node, a recorder.

`ClassificationClient` subscribes to the stamped `classification` topic and answers two
questions: what is the latest result, and what is the result for the camera set I care about
(`wait_for(stamp)`: the first set stamped at or after `stamp`). A result is never presented as
fresher than it is: waiting ends with that set's result or with `ClassificationTimeout`.

It runs inside the caller's node (which the caller spins, from another thread than the one
that waits) or, without one, on a node, context and executor thread of its own. Only rclpy and
vision_msgs are imported: no JAX in the actor's process on this account.
"""
import collections
import threading
import time
import uuid
from typing import Any, Deque, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from hil_serl_reward.pipeline.stamps import stamp_to_ns
from hil_serl_reward.ros import classification
from hil_serl_reward.ros.classification import ClassificationResult, NotAClassification

# Matches the node's `classification` publisher (reliable, keep last 10) with room to spare.
RESULT_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class ClassificationTimeout(TimeoutError):
    """No result for the awaited set arrived in time (the reward node stopped, slow, or
    never got the set's frames)."""

    def __init__(self, stamp_ns: int, timeout: float, newest: Optional[ClassificationResult]
                 ) -> None:
        seen = 'none received yet' if newest is None else f'newest seen {newest.stamp_ns} ns'
        super().__init__(f'no classification for a set stamped at or after {stamp_ns} ns '
                         f'within {timeout:g} s ({seen})')
        self.stamp_ns = stamp_ns
        self.newest = newest


class ClassificationClient:
    """The latest results of a reward node, kept in a bounded history of `history` sets."""

    def __init__(self, node: Optional[Node] = None, topic: str = classification.TOPIC,
                 history: int = 256) -> None:
        if classification.UNAVAILABLE:
            raise ImportError(classification.UNAVAILABLE)
        self._context: Optional[rclpy.context.Context] = None
        self._executor: Optional[SingleThreadedExecutor] = None
        self._spinner: Optional[threading.Thread] = None
        if node is None:
            node = self._own_node()
        self.node = node
        self._cond = threading.Condition()
        self._history: Deque[ClassificationResult] = collections.deque(maxlen=history)
        self.ignored = 0            # messages on the topic that are not reward results
        self.timelines = 0          # times the stamps went back (node restarted on a reset clock)
        self.subscription = node.create_subscription(
            classification.Classification, topic, self._on_message, RESULT_QOS)
        if self._executor is not None:
            self._spinner = threading.Thread(target=self._executor.spin, daemon=True,
                                             name='classification_client')
            self._spinner.start()

    def _own_node(self) -> Node:
        """A node in a context of its own: the caller's rclpy state is left alone."""
        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        node = rclpy.create_node(f'classification_client_{uuid.uuid4().hex[:8]}',
                                 context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        return node

    def _on_message(self, msg: Any) -> None:
        try:
            probability = classification.success_probability(msg)
        except NotAClassification as exc:
            self.ignored += 1
            self.node.get_logger().warning(str(exc), throttle_duration_sec=5.0)
            return
        result = ClassificationResult(stamp_to_ns(msg.header.stamp), msg.header.frame_id,
                                      probability, time.monotonic())
        with self._cond:
            if self._history and result.stamp_ns <= self._history[-1].stamp_ns:
                # The node publishes sets in stamp order: a stamp that is not newer starts
                # a new timeline (a bag looping, a restarted simulation clock). Results of the
                # old one must not answer waits on the new one.
                self._history.clear()
                self.timelines += 1
            self._history.append(result)
            self._cond.notify_all()

    def latest(self) -> Optional[ClassificationResult]:
        with self._cond:
            return self._history[-1] if self._history else None

    def _find(self, stamp_ns: int, exact: bool) -> Optional[ClassificationResult]:
        for result in self._history:
            if result.stamp_ns == stamp_ns or (not exact and result.stamp_ns > stamp_ns):
                return result
        return None

    def wait_for(self, stamp_ns: int, timeout: float, exact: bool = False
                 ) -> ClassificationResult:
        """The result of the first set stamped at or after `stamp_ns` (with `exact`, stamped
        `stamp_ns`), waiting up to `timeout` seconds; ClassificationTimeout otherwise."""
        with self._cond:
            found = self._cond.wait_for(lambda: self._find(stamp_ns, exact), timeout)
            if found is None:
                raise ClassificationTimeout(stamp_ns, timeout,
                                            self._history[-1] if self._history else None)
            return found

    def publisher_count(self) -> int:
        """Reward nodes matched on the topic (0 until DDS discovery has found one)."""
        return self.subscription.get_publisher_count()

    def close(self) -> None:
        self.node.destroy_subscription(self.subscription)
        if self._executor is not None:
            self._executor.shutdown()
            self._spinner.join(timeout=5.0)
            self.node.destroy_node()
            rclpy.try_shutdown(context=self._context)

    def __enter__(self) -> 'ClassificationClient':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
