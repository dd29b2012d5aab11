"""The reward node's results for another Python process: an RL actor, a teleop node, a recorder.

`ClassificationClient` subscribes to the stamped `classification` topic and answers two
questions: what is the latest result, and what is the result for the camera set I care about
(`wait_for(stamp)`: the first set stamped at or after `stamp`). A result is never presented as
fresher than it is: waiting ends with that set's result or with `ClassificationTimeout`.

It runs inside the caller's node (which the caller spins, from another thread than the one
that waits) or, without one, on a node, context and executor thread of its own, on the ROS
clock the reward node runs on: `use_sim_time=True` where it does (a simulator or a bag
publishing /clock); a timeout says so when a /clock is published and the client ignores it.
Only rclpy and vision_msgs are imported: no JAX in the actor's process on this account.

DDS does not authenticate publishers (README, Security): results are believed from whoever
publishes on the topic. A second publisher (a stale reward node left running, a forged one)
is named in a warning, and so is every time the stamps go back, which is what two nodes'
results mixed on one topic look like.
"""
import collections
import threading
import time
import uuid
from typing import Any, Callable, Collection, Deque, List, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from hil_serl_reward.ros import classification
from hil_serl_reward.ros.camera_graph import matched_publishers, published_elsewhere, type_name
from hil_serl_reward.ros.classification import ClassificationResult, NotAClassification

# Matches the node's `classification` publisher (reliable, keep last 10) with room to spare.
RESULT_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class ClassificationTimeout(TimeoutError):
    """No result for the awaited set arrived in time (the reward node stopped, slow, or
    never got the set's frames)."""

    def __init__(self, stamp_ns: int, timeout: float, newest: Optional[ClassificationResult],
                 hint: str = '') -> None:
        seen = 'none received yet' if newest is None else f'newest seen {newest.stamp_ns} ns'
        super().__init__(f'no classification for a set stamped at or after {stamp_ns} ns '
                         f'within {timeout:g} s ({seen}){hint}')
        self.stamp_ns = stamp_ns
        self.newest = newest


class ClassificationClient:
    """The latest results of a reward node, kept in a bounded history of `history` sets."""

    def __init__(self, node: Optional[Node] = None, topic: str = classification.TOPIC,
                 history: int = 256, use_sim_time: bool = False) -> None:
        if classification.UNAVAILABLE:
            raise ImportError(classification.UNAVAILABLE)
        self._context: Optional[rclpy.context.Context] = None
        self._executor: Optional[SingleThreadedExecutor] = None
        self._spinner: Optional[threading.Thread] = None
        if node is None:
            node = self._own_node(use_sim_time)
        self.node = node
        self._warned_publishers: List[str] = []
        self._publishers_checked = float('-inf')
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

    def _own_node(self, use_sim_time: bool) -> Node:
        """A node in a context of its own: the caller's rclpy state is left alone."""
        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        node = rclpy.create_node(
            f'classification_client_{uuid.uuid4().hex[:8]}', context=self._context,
            parameter_overrides=[Parameter('use_sim_time', value=use_sim_time)])
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        return node

    def _on_message(self, msg: Any) -> None:
        try:
            result = classification.result_from_message(msg, time.monotonic())
        except NotAClassification as exc:
            self.ignored += 1
            self.node.get_logger().warning(str(exc), throttle_duration_sec=5.0)
            return
        with self._cond:
            went_back = bool(self._history) and result.stamp_ns <= self._history[-1].stamp_ns
            if went_back:
                # The node publishes sets in stamp order: a stamp that is not newer starts
                # a new timeline (a bag looping, a restarted simulation clock). Results of the
                # old one must not answer waits on the new one.
                self._history.clear()
                self.timelines += 1
            self._history.append(result)
            self._cond.notify_all()
        if went_back:
            self.node.get_logger().info(
                f'results went back in time ({self.timelines} times so far): a new timeline '
                f'(a restarted node, a looping bag or simulator clock)', throttle_duration_sec=5.0)
            self._check_publishers('results went back in time', force=True)

    def publishers(self) -> List[str]:
        """The nodes publishing on the results topic, by their full names."""
        return sorted(f"{info.node_namespace.rstrip('/')}/{info.node_name}" for info in
                      self.node.get_publishers_info_by_topic(self.subscription.topic_name))

    def _check_publishers(self, why: str, force: bool = False) -> None:
        """Warns, naming them, when more than one node publishes results (once per set of
        publishers; the graph is looked at most once a second unless `force`)."""
        now = time.monotonic()
        if not force and now - self._publishers_checked < 1.0:
            return
        self._publishers_checked = now
        publishers = self.publishers()
        if len(publishers) > 1 and publishers != self._warned_publishers:
            self.node.get_logger().warning(
                f'{why}: {len(publishers)} nodes publish on {self.subscription.topic_name}: '
                f'{publishers}; results of all of them are taken (a stale reward node left '
                f'running, or a forged one: DDS does not authenticate publishers, see the '
                f'README, Security)')
        self._warned_publishers = publishers if len(publishers) > 1 else []

    def latest(self) -> Optional[ClassificationResult]:
        with self._cond:
            return self._history[-1] if self._history else None

    def _wait(self, match: Callable[[ClassificationResult], bool], stamp_ns: int,
              timeout: float) -> ClassificationResult:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((r for r in self._history if match(r)), None), timeout)
            newest = self._history[-1] if self._history else None
        if found is None:
            raise ClassificationTimeout(stamp_ns, timeout, newest, self.clock_hint())
        self._check_publishers('a result arrived')
        return found

    def wait_for(self, stamp_ns: int, timeout: float, exact: bool = False
                 ) -> ClassificationResult:
        """The result of the first set stamped at or after `stamp_ns` (with `exact`, stamped
        `stamp_ns`), waiting up to `timeout` seconds; ClassificationTimeout otherwise."""
        def match(result: ClassificationResult) -> bool:
            return result.stamp_ns == stamp_ns or (not exact and result.stamp_ns > stamp_ns)
        return self._wait(match, stamp_ns, timeout)

    def wait_for_one_of(self, stamps: Collection[int], timeout: float,
                        frame_id: Optional[str] = None) -> ClassificationResult:
        """The result of a set stamped exactly one of `stamps` (and, given, with that
        `frame_id`): an actor that sent its observation under those stamps takes nothing else."""
        wanted = set(stamps)
        return self._wait(lambda r: r.stamp_ns in wanted
                          and (frame_id is None or r.frame_id == frame_id),
                          min(wanted), timeout)

    def clock_hint(self) -> str:
        """Why waits fail when the client and the reward node keep different clocks."""
        if self.node.count_publishers('/clock') and not self._uses_sim_time():
            return ('; /clock is published but this client runs on system time: give '
                    'use_sim_time=True, as the reward node runs')
        return ''

    def _uses_sim_time(self) -> bool:
        return bool(self.node.get_parameter('use_sim_time').value)

    def publisher_count(self) -> int:
        """Reward nodes matched on the topic (0 until DDS discovery has found one)."""
        return matched_publishers(self.node, self.subscription)

    def wait_for_node(self, timeout: float = 10.0) -> None:
        """Until DDS discovery has matched a reward node (0.2-1.4 s after the constructor):
        a wait_for before that finds nothing; TimeoutError naming the topic otherwise."""
        deadline = time.monotonic() + timeout
        while self.publisher_count() == 0:
            if time.monotonic() > deadline:
                topic = self.subscription.topic_name
                raise TimeoutError(f'no reward node publishes on {topic} within {timeout:g} s' +
                                   published_elsewhere(
                                       self.node, topic, type_name(classification.Classification),
                                       what='a reward node',
                                       fix="give the client that topic (a reward node's "
                                           "namespace, rig or stage)"))
            time.sleep(0.01)

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
