"""Console-script entry points of the node executables, importing each node only when called.

`ros2 launch` stopped in its first second sends SIGINT to nodes still importing rclpy, jax
and flax (about 1 s). With the node module imported by the script itself, each printed a
KeyboardInterrupt traceback; here the import sits inside the same quiet exit that
`node_main.run_node` gives a Ctrl-C later in start-up. Only the standard library is
imported at the top, so that the window before the `try` is the interpreter's own start.
"""
import importlib
import os
import sys
from typing import Callable, NoReturn


def exit_interrupted_while_starting(name: str) -> NoReturn:
    """One line and exit code 0, as for a Ctrl-C once running: nothing is open or recorded
    yet. os._exit, because a normal interpreter exit tears the process down under XLA's
    compile threads when the model is compiling (SIGSEGV)."""
    print(f'[{name}] interrupted while starting', file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(0)


def _executable(module: str, name: str) -> Callable[[], int]:
    def main() -> int:
        try:
            run = importlib.import_module(module).main
        except KeyboardInterrupt:
            exit_interrupted_while_starting(name)
        return run()
    return main


camera_sim = _executable('hil_serl_reward.ros.camera_sim', 'camera_sim')
classifier_node = _executable('hil_serl_reward.ros.classifier_node', 'classifier_node')
record_data = _executable('hil_serl_reward.ros.record_data', 'record_data')
