"""A real rclpy test bench: the node under test plus a probe node that plays the cameras
and listens to every output, all spun by one executor in a background thread, over DDS: the
executor our node executables spin (node_main.make_executor). A MultiThreadedExecutor(4)
spun them before: two messages ready at once for one node's mutually exclusive callback
group sent rclpy round a busy loop (the handler that finds the group taken gives the entity
back and wakes the executor), thousands of pending handlers, one core, and the GIL held away
from timers and publishers for up to a second at a time (a 20 Hz camera_sim timer ran at
2-7 Hz)."""
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, Float32
from std_srvs.srv import Trigger

from hil_serl_reward.pipeline.image_conversion import rgb_to_msg
from hil_serl_reward.pipeline.stamps import write_stamp
from hil_serl_reward.ros import classification
from hil_serl_reward.ros.classifier_node import ClassifierNode
from hil_serl_reward.ros.dds import config_dir
from hil_serl_reward.ros.node_main import make_executor


def ns_stamp(msg: Any, stamp_ns: int) -> Any:
    write_stamp(msg.header.stamp, stamp_ns)
    return msg


def image_msg(rgb: np.ndarray, stamp_ns: int, encoding: str = 'rgb8', **overrides: Any) -> Image:
    msg = Image(**{**rgb_to_msg(rgb, encoding), **overrides})
    return ns_stamp(msg, stamp_ns)


def start_executable(module, namespace, *params, ignore_sigint=False):
    """A node executable with demo.yaml in `namespace`; with `ignore_sigint` it starts as a
    background job of a script does, SIGINT ignored."""
    command = [sys.executable, '-m', f'hil_serl_reward.ros.{module}', '--ros-args',
               '--params-file', str(config_dir() / 'demo.yaml'), '-r', f'__ns:={namespace}']
    for param in params:
        command += ['-p', param]
    if ignore_sigint:           # a shell's trap, not preexec_fn: no fork of this JAX process
        command = ['sh', '-c', 'trap "" INT; exec "$@"', 'sh', *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


class SlowClassifier:
    """The real classifier, deliberately slowed down to `delay` seconds per set."""

    def __init__(self, inner: Any, delay: float = 0.15) -> None:
        self.inner, self.delay = inner, delay

    def __getattr__(self, name: str) -> Any:
        """Everything but predict is the real classifier's."""
        return getattr(self.inner, name)

    def predict(self, images: Any) -> Any:
        time.sleep(self.delay)
        return self.inner.predict(images)


class Bench:
    def __init__(self, context: Optional[rclpy.Context] = None) -> None:
        """`context`: an rclpy context (a DDS participant) of the bench's own; rclpy's
        default one, shared by the whole session, if None."""
        self.namespace = f'/t{uuid.uuid4().hex[:8]}'
        self.context = context
        self.executor = make_executor(context)
        self.probe = rclpy.create_node('probe', namespace=self.namespace, context=context)
        self.executor.add_node(self.probe)
        self.outputs: Dict[str, List[Any]] = {'reward': [], 'success': [], 'probability': []}
        self.diagnostics: List[Any] = []
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic, msg_type in (('reward', Float32), ('success', Bool), ('probability', Float32)):
            self.probe.create_subscription(
                msg_type, topic, lambda m, t=topic: self.outputs[t].append(m.data), reliable)
        self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                       reliable)
        self.classifications: List[Any] = []
        if not classification.UNAVAILABLE:
            self.probe.create_subscription(classification.Classification, classification.TOPIC,
                                           self.classifications.append, reliable)
        self.publishers: Dict[str, Any] = {}
        self._parameter_clients: Dict[str, AsyncParameterClient] = {}
        self.node: Optional[ClassifierNode] = None
        self._nodes: List[Any] = []         # added by add(), destroyed by close() if still here
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        """The executor's spin, but stoppable: close() ends it before shutting the executor
        down (shut down under a running spin, rclpy raised InvalidHandle in this thread)."""
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(self.namespace + '/'):
                self.diagnostics.append(status)

    def start_node(self, loader: Optional[Callable] = None,
                   remappings: Sequence[Tuple[str, str]] = (), **params: Any) -> ClassifierNode:
        """The node in this bench's namespace with `params`; `remappings` (from, to) as a
        launch file's."""
        overrides = [Parameter(name, value=value) for name, value in params.items()]
        cli_args = ['--ros-args'] + [arg for rule in remappings for arg in ('-r', '%s:=%s' % rule)]
        self.node = ClassifierNode(loader=loader, namespace=self.namespace,
                                   parameter_overrides=overrides, context=self.context,
                                   cli_args=cli_args if remappings else None)
        return self.add(self.node)

    def add(self, node: Any) -> Any:
        """Spins `node` with the bench until remove(node) or close(): a test that fails before
        its own remove() leaves no node behind whose publishers a later test would meet in
        the graph (a camera simulator still replaying a bag in another namespace)."""
        self.executor.add_node(node)
        self._nodes.append(node)
        return node

    def camera(self, key: str, compressed: bool = False, topic: Optional[str] = None) -> Any:
        if key not in self.publishers:
            self.publishers[key] = self.probe.create_publisher(
                CompressedImage if compressed else Image,
                topic or f"{key}/image_raw{'/compressed' if compressed else ''}",
                QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        return self.publishers[key]

    def connect(self, keys: List[str], timeout: float = 10.0) -> None:
        """Wait until DDS discovery has matched every camera and every output topic."""
        pubs = [self.camera(k) for k in keys]
        self.wait(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                  and self.node.rigs[0].probability_pub.get_subscription_count() > 0
                  and self.node.rigs[0].reward_pub.get_subscription_count() > 0
                  and self.node.rigs[0].success_pub.get_subscription_count() > 0, timeout,
                  'discovery')

    def set_parameter(self, name: str, value: Any, timeout: float = 30.0,
                      node_name: Optional[str] = None, resend_after: float = 0.0) -> Any:
        """Sets one parameter of the node under test (or of `node_name`, a node of another
        process) as `ros2 param set` does; returns the SetParametersResult. One client per
        node, kept: a later call that a test times then times the node's answer, not the
        matching of a new client's request and reply topics. `resend_after` > 0 sends the
        request again after that many seconds without an answer: a server that has not yet
        matched the client's reply reader drops its answer (rmw_fastrtps: "failed to send
        response (timeout)"), which a second request after matching gets."""
        node_name = node_name or self.node.get_fully_qualified_name()
        client = self._parameter_clients.get(node_name)
        if client is None:
            client = self._parameter_clients[node_name] = AsyncParameterClient(self.probe,
                                                                               node_name)
        assert client.wait_for_services(timeout_sec=10)
        deadline = time.monotonic() + timeout
        while True:
            future = client.set_parameters([Parameter(name, value=value)])
            wait = min(resend_after or timeout, deadline - time.monotonic())
            try:
                self.wait(future.done, max(wait, 0.0), f'set_parameters {name}')
                return future.result().results[0]
            except AssertionError:
                if not resend_after or time.monotonic() >= deadline:
                    raise

    def reload(self, node_name: Optional[str] = None, timeout: float = 30.0) -> Any:
        """Calls the `~/reload` service of the node under test (or of `node_name`);
        returns the Trigger response."""
        client = self.probe.create_client(
            Trigger, f'{node_name or self.node.get_fully_qualified_name()}/reload')
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(Trigger.Request())
        self.wait(future.done, timeout, 'reload service')
        return future.result()

    def remove(self, node: Any) -> None:
        """Takes `node` off the executor and destroys it once the spin loop has gone round
        without it: destroyed while the spin thread waits on it, rclpy raises InvalidHandle
        in that thread."""
        self.executor.remove_node(node)
        gone_round = threading.Event()
        self.executor.create_task(gone_round.set)
        gone_round.wait(timeout=5)
        node.destroy_node()
        if node in self._nodes:
            self._nodes.remove(node)

    def publish(self, key: str, msg: Any) -> None:
        self.camera(key).publish(msg)

    def publish_until(self, messages: dict[str, Any], predicate: Callable[[], bool],
                      timeout: float = 20.0, what: str = '', every: float = 1.0) -> None:
        """Publish one message per camera, again every `every` s until `predicate()`: the
        node's camera subscriptions are best effort, and a 1280x720 frame (2.7 MB, many DDS
        fragments) lost once on a loaded machine must not fail a test about something else."""
        deadline = time.monotonic() + timeout
        while True:
            for key, msg in messages.items():
                self.publish(key, msg)
            try:
                return self.wait(predicate, min(every, max(deadline - time.monotonic(), 0.0)),
                                 what)
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise AssertionError(f'timed out after {timeout} s waiting for '
                                         f'{what or predicate}') from None

    @staticmethod
    def wait(predicate: Callable[[], bool], timeout: float = 10.0, what: str = '') -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.01)
        raise AssertionError(f'timed out after {timeout} s waiting for {what or predicate}')

    def wait_outputs(self, count: int, timeout: float = 15.0) -> None:
        try:
            self.wait(lambda: all(len(v) >= count for v in self.outputs.values()), timeout)
        except AssertionError:
            have = {k: len(v) for k, v in self.outputs.items()}
            raise AssertionError(f'expected {count} outputs on each of reward/success/'
                                 f'probability within {timeout} s, have {have}') from None

    def latest_diagnostics(self, timeout: float = 5.0) -> Dict[str, str]:
        seen = len(self.diagnostics)
        self.wait(lambda: len(self.diagnostics) > seen, timeout, 'a diagnostics message')
        status = self.diagnostics[-1]
        return {'level': status.level, 'message': status.message,
                **{kv.key: kv.value for kv in status.values}}

    def close(self) -> None:
        for node in reversed(list(self._nodes)):
            self.remove(node)
        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.probe.destroy_node()


class OutputProbe:
    """The probe's side of a node serving several rigs or stages: a publisher per camera topic
    (`camera_topics(group)`: key -> topic; a node's stages share one set) and each group's
    outputs under its name."""

    QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

    def __init__(self, bench: 'Bench', groups: Sequence[str],
                 camera_topics: Callable[[str], Dict[str, str]]) -> None:
        self.bench = bench
        self.groups = tuple(groups)
        self.topics = {group: camera_topics(group) for group in self.groups}
        self.cameras: Dict[str, Any] = {}
        for topics in self.topics.values():
            for topic in topics.values():
                if topic not in self.cameras:
                    self.cameras[topic] = bench.probe.create_publisher(Image, topic, self.QOS)
        self.probability: Dict[str, List[Any]] = {group: [] for group in self.groups}
        self.success: Dict[str, List[Any]] = {group: [] for group in self.groups}
        self.classifications: Dict[str, List[Any]] = {group: [] for group in self.groups}
        for group in self.groups:
            bench.probe.create_subscription(Float32, f'{group}/probability',
                                            self.probability[group].append, self.QOS)
            bench.probe.create_subscription(Bool, f'{group}/success',
                                            self.success[group].append, self.QOS)
            if not classification.UNAVAILABLE:
                bench.probe.create_subscription(
                    classification.Classification, f'{group}/{classification.TOPIC}',
                    self.classifications[group].append, self.QOS)

    def connect(self, node: ClassifierNode) -> None:
        self.bench.wait(lambda: all(p.get_subscription_count() > 0
                                    for p in self.cameras.values())
                        and all(rig.probability_pub.get_subscription_count() > 0
                                for rig in node.rigs), 10, f'discovery of {self.groups}')

    def send(self, group: str, rgb: Dict[str, np.ndarray], stamp_ns: int) -> None:
        for key, topic in self.topics[group].items():
            self.cameras[topic].publish(image_msg(rgb[key], stamp_ns))

    def statuses(self, node_name: str) -> Dict[str, Dict[str, Any]]:
        """Each group's status in the diagnostics after now: level, message and values."""
        seen = len(self.bench.diagnostics)
        self.bench.wait(lambda: len(self.bench.diagnostics) >= seen + len(self.groups), 5,
                        'diagnostics')
        return {group: {'level': status.level, 'message': status.message,
                        **{kv.key: kv.value for kv in status.values}}
                for status in self.bench.diagnostics[seen:] for group in self.groups
                if status.name == f'{node_name}: reward classifier ({group})'}
