"""The `main` every node executable shares: the malloc setting for image traffic
(malloc_tuning.py), init, start-up errors as one fatal line and exit code 1, spin until
Ctrl-C (or until the node says it is done), clean shutdown."""
from typing import Callable, Optional, Sequence, Tuple, Type

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from hil_serl_reward.malloc_tuning import keep_image_buffers


def run_node(make_node: Callable[[], Node], name: str,
             startup_errors: Tuple[Type[Exception], ...], threads: int = 1,
             done: Optional[Callable[[Node], bool]] = None,
             args: Optional[Sequence[str]] = None) -> int:
    keep_image_buffers()
    rclpy.init(args=args)
    try:
        node = make_node()
    except startup_errors as exc:
        rclpy.logging.get_logger(name).fatal(str(exc))
        rclpy.try_shutdown()
        return 1
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    try:
        while rclpy.ok() and not (done and done(node)):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
