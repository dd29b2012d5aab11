"""Header stamps as integer nanoseconds, the unit every comparison here uses (no JAX, no rclpy:
the RL client and the pure modules share it)."""
from typing import Any, Optional


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def write_stamp(stamp: Any, ns: int) -> Any:
    """Sets a builtin_interfaces/Time in place to `ns` nanoseconds; returns it."""
    stamp.sec, stamp.nanosec = divmod(int(ns), 1_000_000_000)
    return stamp


def age_s(now_ns: int, stamp_ns: int) -> Optional[float]:
    """Seconds from a header stamp to `now_ns`, or None while that clock reads zero (a node on
    `use_sim_time` before any /clock): an age against it would be decades negative."""
    return (now_ns - stamp_ns) / 1e9 if now_ns else None
