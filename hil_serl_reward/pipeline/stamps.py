"""Header stamps as integer nanoseconds, the unit every comparison here uses (no JAX, no rclpy:
the RL client and the pure modules share it)."""
from typing import Any


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def write_stamp(stamp: Any, ns: int) -> Any:
    """Sets a builtin_interfaces/Time in place to `ns` nanoseconds; returns it."""
    stamp.sec, stamp.nanosec = divmod(int(ns), 1_000_000_000)
    return stamp
