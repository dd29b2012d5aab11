"""node_main: the executor our node executables spin (rclpy's EventsExecutor where rclpy has
it, Jazzy and later; the single-threaded one elsewhere, Humble), and Ctrl-C while starting."""
import os
import signal
import subprocess
import sys

import pytest
from rclpy.executors import SingleThreadedExecutor

from hil_serl_reward.ros.dds import config_dir
from hil_serl_reward.ros.node_main import make_executor
from ros_harness import start_executable


def test_events_executor_where_rclpy_has_it(ros):
    import rclpy.experimental  # noqa: F401  (Jazzy and Kilted, the distros we pin, have it)
    executor = make_executor()
    try:
        assert type(executor).__name__ == 'EventsExecutor'     # a factory's C++ class
    finally:
        executor.shutdown()


def test_single_threaded_executor_where_rclpy_has_no_events_executor(ros, monkeypatch):
    monkeypatch.setitem(sys.modules, 'rclpy.experimental', None)     # as on Humble
    executor = make_executor()
    try:
        assert isinstance(executor, SingleThreadedExecutor)
    finally:
        executor.shutdown()


def interrupt_when(command, marker, env=None):
    """Runs `command`, sends SIGINT once a line of its output contains `marker`; returns
    its exit code and everything it printed."""
    node = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    try:
        lines = []
        for line in node.stdout:
            lines.append(line)
            if marker in line:
                break
        node.send_signal(signal.SIGINT)
        output = ''.join(lines) + node.communicate(timeout=60)[0]
        return node.returncode, output
    finally:
        node.kill()


def test_ctrl_c_while_the_model_compiles_exits_cleanly():
    """Ctrl-C during start-up used to print a traceback and crash the process (SIGSEGV) as
    it tore down under XLA's compile threads. No compilation cache here, so the SIGINT lands
    while the untrained model's initialiser compiles (seconds on the CI VM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_COMPILATION_CACHE')}
    returncode, log = interrupt_when(       # the warning comes just before compiling
        [sys.executable, '-m', 'hil_serl_reward.ros.classifier_node', '--ros-args',
         '--params-file', str(config_dir() / 'demo.yaml')], 'UNTRAINED', env)
    assert returncode == 0, log
    assert 'Traceback' not in log and 'interrupted while starting' in log, log


def test_ctrl_c_while_the_node_module_imports_exits_cleanly():
    """The console scripts import their node inside the same quiet exit (node_executables):
    a SIGINT during those imports (rclpy, jax, flax: about 1 s) used to end in a
    KeyboardInterrupt traceback. The child says when the import has started (an import hook
    that the import machinery calls from inside the entry point); a SIGINT arriving after
    the import would meet a node with no params file, which exits 1."""
    script = ('import sys\n'
              'from hil_serl_reward.ros.node_executables import classifier_node\n'
              'class Announce:\n'
              '    def find_spec(self, name, path=None, target=None):\n'
              '        if name == "hil_serl_reward.ros.classifier_node":\n'
              '            print("importing", flush=True)\n'
              'sys.meta_path.insert(0, Announce())\n'
              'sys.exit(classifier_node())\n')
    returncode, log = interrupt_when([sys.executable, '-c', script], 'importing')
    assert log.startswith('importing\n'), log
    assert returncode == 0, log
    assert 'Traceback' not in log and '[classifier_node] interrupted while starting' in log, log


@pytest.mark.parametrize('signum, ignore_sigint', [
    (signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=['sigint', 'sigterm', 'sigint-ignored-at-start'])
def test_a_signal_while_the_cameras_stream_ends_in_order(bench, signum, ignore_sigint):
    """Before, rclpy's handler shut the context down under the inference worker and the
    timers: 'publisher's context is invalid' errors, tracebacks, exit 1. Now every node
    executable stops its spin loop, destroys the node, then shuts down: exit 0, no error."""
    sim = start_executable('camera_sim', bench.namespace, 'rate:=30.0', 'width:=320',
                           'height:=240', ignore_sigint=ignore_sigint)
    node = start_executable('classifier_node', bench.namespace, ignore_sigint=ignore_sigint)
    logs = {}
    try:
        bench.wait(lambda: len(bench.outputs['probability']) >= 10, 120, 'rewards streaming')
        for name, process in (('classifier_node', node), ('camera_sim', sim)):
            process.send_signal(signum)
            logs[name] = process.communicate(timeout=60)[0]
    finally:
        for process in (node, sim):
            process.kill()
    for name, process in (('classifier_node', node), ('camera_sim', sim)):
        assert process.returncode == 0, (name, logs[name])
        assert 'ERROR' not in logs[name] and 'Traceback' not in logs[name], (name, logs[name])


SLOW_RELOAD_NODE = """
import sys, time
from hil_serl_reward.model.inference import RewardClassifier
from hil_serl_reward.ros import classifier_node
loads = []
def load(path):     # every load after the first: 12 s, then what a checkpoint's note logs
    if loads:
        print('load started', flush=True)
        time.sleep(12.0)
        classifier = RewardClassifier.from_checkpoint(path, image_keys=('wrist_1', 'front'),
                                                      device='cpu')
        node.get_logger().warning('a note logged at the end of the load')
        print('load ended', flush=True)
        return classifier
    loads.append(path)
    return RewardClassifier.from_checkpoint(path, image_keys=('wrist_1', 'front'), device='cpu')
def make():
    global node
    node = classifier_node.ClassifierNode(loader=load, before_jax=classifier_node.xla_flags_for)
    return node
sys.exit(classifier_node.run_node(make, classifier_node.NODE_NAME,
                                  (classifier_node.StartupError,)))
"""


def test_a_signal_during_a_reload_waits_for_the_load_and_ends_in_order(bench, checkpoint_for):
    """A process that exits while XLA compiles on another thread aborts (exit code 134). The
    node used to wait 10 s for a load, then exit under it: with a slower load (a checkpoint on
    a network disk, a compile on a small ARM board) a Ctrl-C could end in an abort. Now the
    load is voided, the log says the process waits for it, and it exits when the load ends."""
    keys = ('wrist_1', 'front')
    node = subprocess.Popen(
        [sys.executable, '-c', SLOW_RELOAD_NODE, '--ros-args', '-r',
         f'__ns:={bench.namespace}', '-p', f'checkpoint_path:={checkpoint_for(keys)}',
         '-p', 'camera_timeout:=60.0'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        assert bench.set_parameter('checkpoint_path', str(checkpoint_for(keys, seed=1)),
                                   resend_after=1.0,
                                   node_name=f'{bench.namespace}/hil_serl_reward').successful
        lines = []
        for line in node.stdout:
            lines.append(line)
            if 'load started' in line:
                break
        node.send_signal(signal.SIGINT)
        log = ''.join(lines) + node.communicate(timeout=120)[0]
    finally:
        node.kill()
    assert node.returncode == 0, log
    assert 'stopping during the load of' in log and 'load ended' in log, log
    assert 'a note logged at the end of the load' in log, log     # after rclpy's shutdown
    assert 'reloaded: now serving' not in log and 'Traceback' not in log, log
