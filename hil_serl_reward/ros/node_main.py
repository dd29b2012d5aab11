"""The `main` every node executable shares: the malloc setting for image traffic
(malloc_tuning.py), init, start-up errors as one fatal line and exit code 1, Ctrl-C while
starting as exit code 0, spin until SIGINT or SIGTERM (or until the node says it is done),
then an ordered shutdown.

The signals are ours, not rclpy's: rclpy's handler shuts the context down the moment a
signal arrives, while the inference worker or a timer may be publishing ("publisher's
context is invalid", a traceback, exit 1). Here a signal only stops the spin loop; the node
is destroyed (worker, subscriptions, publishers) and only then the context shut down.
"""
import signal
import sys
import threading
from typing import Callable, Optional, Sequence, Tuple, Type

import rclpy
from rclpy.context import Context
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from hil_serl_reward.ros.malloc_tuning import keep_image_buffers
from hil_serl_reward.ros.node_executables import exit_interrupted_while_starting
from hil_serl_reward.ros.params_file import ParamsFileError, read_params_document


def make_executor(context: Optional[Context] = None) -> Executor:
    """rclpy's EventsExecutor (its executor loop in C++; Jazzy and later) where rclpy has it,
    else the single-threaded one, for `context` (rclpy's default one if None). One thread is
    enough: our callbacks only check a message and hand it on, inference and recording run in
    threads of their own. Against the MultiThreadedExecutor these nodes had before, at
    2 x 640x480 @ 30 Hz on the CI VM: camera message to callback 1-2 ms instead of 4-6
    (median), 0.1 core less (README, Performance)."""
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return SingleThreadedExecutor(context=context)
    return EventsExecutor(context=context)


def params_file_problem(args: Sequence[str]) -> Optional[str]:
    """What is wrong with a `--params-file` of `args`, in one line: rcl's own parser would
    end the process in a traceback."""
    for flag, path in zip(args, args[1:]):
        if flag == '--params-file':
            try:
                read_params_document(path)
            except ParamsFileError as exc:
                return str(exc)
    return None


def watch_signals(handler: Callable[[int, object], None]) -> None:
    """SIGINT and SIGTERM, however they come (`ros2 launch` sends SIGINT, then SIGTERM; a
    background job of a script starts with SIGINT ignored, which this overrides too)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, handler)


def run_node(make_node: Callable[[], Node], name: str,
             startup_errors: Tuple[Type[Exception], ...],
             done: Optional[Callable[[Node], bool]] = None,
             args: Optional[Sequence[str]] = None) -> int:
    keep_image_buffers()
    problem = params_file_problem(list(sys.argv if args is None else args))
    if problem:
        rclpy.logging.get_logger(name).fatal(problem)
        return 1
    # Starting (e.g. while the model compiles): a signal ends the process at once, from the
    # handler. A KeyboardInterrupt raised instead can land inside a callback where Python
    # swallows it (JAX's gc callback: "Exception ignored ... Traceback") and start-up goes on.
    watch_signals(lambda signum, frame: exit_interrupted_while_starting(name))
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except _rclpy.RCLError as exc:                # e.g. a params file rcl cannot use
        rclpy.logging.get_logger(name).fatal(f'cannot start: {str(exc).splitlines()[0]}')
        return 1
    try:
        node = make_node()
    except startup_errors as exc:
        rclpy.logging.get_logger(name).fatal(str(exc))
        rclpy.try_shutdown()
        return 1
    stop = threading.Event()
    watch_signals(lambda signum, frame: stop.set())
    executor = make_executor()
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok() and not (done and done(node)):
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return getattr(node, 'exit_code', 0)      # a node that lost work says so (record_data)
