"""The executor our node executables spin: rclpy's EventsExecutor where rclpy has it
(Jazzy and later), the single-threaded one elsewhere (Humble)."""
import sys

from rclpy.executors import SingleThreadedExecutor

from hil_serl_reward.node_main import make_executor


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
