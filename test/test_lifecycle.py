"""The reward node as a managed (lifecycle) node, driven over its lifecycle services as
`ros2 lifecycle set` or a lifecycle manager would."""
import signal
import subprocess
import sys
import time

import pytest

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from hil_serl_reward.model.inference import RewardClassifier
from test_classifier_node import KEYS, expected_probability, frames, send_set


class Lifecycle:
    """Client side of a node's lifecycle services, on the bench's probe node."""

    def __init__(self, bench, node):
        self.bench = bench
        name = node if isinstance(node, str) else node.get_fully_qualified_name()
        self.change = bench.probe.create_client(ChangeState, f'{name}/change_state')
        self.get = bench.probe.create_client(GetState, f'{name}/get_state')
        assert self.change.wait_for_service(10) and self.get.wait_for_service(10)

    def call(self, client, request):
        future = client.call_async(request)
        self.bench.wait(future.done, 60, f'{client.srv_name}')
        return future.result()

    def state(self) -> str:
        return self.call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        return self.call(self.change, ChangeState.Request(
            transition=Transition(id=transition_id))).success


def camera_subscribers(bench):
    return [bench.camera(key).get_subscription_count() for key in KEYS]


def test_autostart_false_waits_for_configure_and_activate(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            autostart=False)
    lifecycle = Lifecycle(bench, node)
    assert lifecycle.state() == 'unconfigured' and node.classifier is None
    assert bench.latest_diagnostics()['message'] == 'unconfigured: no model loaded'

    assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state() == 'inactive' and node.classifier is not None
    time.sleep(0.5)
    assert camera_subscribers(bench) == [0, 0]      # inactive: not subscribed

    assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
    bench.connect(list(KEYS))
    send_set(bench, frames(0), 100_000_000)
    bench.wait_outputs(1)

    assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE)
    assert lifecycle.state() == 'inactive'
    bench.wait(lambda: camera_subscribers(bench) == [0, 0], 10, 'unsubscribed')
    send_set(bench, frames(0), 200_000_000)
    time.sleep(0.5)
    assert len(bench.outputs['probability']) == 1
    assert bench.latest_diagnostics()['message'] == 'inactive: not subscribed to the cameras'

    assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)   # serves again
    bench.connect(list(KEYS))
    send_set(bench, frames(0), 300_000_000)
    bench.wait_outputs(2)

    assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE)
    assert lifecycle.transition(Transition.TRANSITION_CLEANUP)
    assert lifecycle.state() == 'unconfigured' and node.classifier is None
    diagnostics = node.diagnostic_values()     # nothing left from the last activation
    assert diagnostics['sets published'] == '0' and 'wrist_1 images' not in diagnostics


def test_camera_timeout_counts_from_activate_not_from_start(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS),
                            autostart=False, camera_timeout=1.0)
    lifecycle = Lifecycle(bench, node)
    assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
    time.sleep(1.5)                             # inactive for longer than the timeout
    assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
    assert node.status()[1] == 'publishing rewards'
    bench.wait(lambda: node.status()[1].startswith('cameras silent'), 10, 'silence noticed')


def test_failed_configure_stays_unconfigured_until_the_checkpoint_is_fixed(
        bench, checkpoint_for):
    node = bench.start_node(checkpoint_path='/nonexistent/ckpt', image_keys=list(KEYS),
                            autostart=False)
    lifecycle = Lifecycle(bench, node)
    assert not lifecycle.transition(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.state() == 'unconfigured'
    assert bench.set_parameter('checkpoint_path', str(checkpoint_for(KEYS))).successful
    assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
    assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
    assert lifecycle.state() == 'active'


def test_autostart_is_active_at_once(bench, checkpoint_for):
    node = bench.start_node(checkpoint_path=str(checkpoint_for(KEYS)), image_keys=list(KEYS))
    assert Lifecycle(bench, node).state() == 'active' and node.serving


@pytest.mark.own_participant
def test_the_executable_under_its_own_executor(bench, checkpoint_for):
    """The `classifier_node` executable, spun by node_main's executor (not this bench's), in
    another process: lifecycle services, a parameter, the reload service, camera sets."""
    first, second = checkpoint_for(KEYS), checkpoint_for(KEYS, seed=1)
    node = subprocess.Popen(
        [sys.executable, '-m', 'hil_serl_reward.ros.classifier_node', '--ros-args',
         '-r', f'__ns:={bench.namespace}', '-p', f'checkpoint_path:={first}',
         '-p', 'autostart:=false', '-p', 'camera_timeout:=60.0'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        name = f'{bench.namespace}/hil_serl_reward'
        lifecycle = Lifecycle(bench, name)
        assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
        # by id only, a transition that does not start from `active` (rclpy raised, and the
        # process ended with exit 1): refused, and the node goes on serving below
        assert not lifecycle.transition(Transition.TRANSITION_CONFIGURE)
        bench.wait(lambda: camera_subscribers(bench) == [1, 1]
                   and bench.probe.count_publishers(f'{bench.namespace}/probability') == 1,
                   10, 'camera subscriptions and the probability publisher')
        rgb = frames(20)
        stamps = iter(range(100_000_000, 10**12, 100_000_000))

        def serve(count):
            """Sends `rgb` until the `count`th output arrives: this side cannot see when the
            other process has matched our subscriptions, so the first sets may be lost."""
            for _ in range(30):
                send_set(bench, rgb, next(stamps))
                try:
                    return bench.wait_outputs(count, timeout=0.5)
                except AssertionError:
                    continue
            bench.wait_outputs(count)

        serve(1)
        expected = expected_probability(RewardClassifier.from_checkpoint(first, device='cpu'),
                                        rgb, {})
        assert bench.outputs['probability'][-1] == pytest.approx(expected, abs=1e-6)

        assert bench.set_parameter('checkpoint_path', str(second), node_name=name).successful
        expected = expected_probability(RewardClassifier.from_checkpoint(second, device='cpu'),
                                        rgb, {})
        for _ in range(60):                     # the old model serves while the new one loads
            serve(len(bench.outputs['probability']) + 1)
            if bench.outputs['probability'][-1] == pytest.approx(expected, abs=1e-6):
                break
        assert bench.outputs['probability'][-1] == pytest.approx(expected, abs=1e-6)

        response = bench.reload(node_name=name)
        assert response.success, response.message
        assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE)

        node.send_signal(signal.SIGINT)
        log = node.communicate(timeout=30)[0]
    finally:
        node.kill()
    assert node.returncode == 0 and 'Traceback' not in log, log
    assert 'serving; cameras' in log and 'deactivated: unsubscribed' in log, log
