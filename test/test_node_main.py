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
