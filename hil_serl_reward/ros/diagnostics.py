"""The nodes' diagnostics plumbing: a `/diagnostics` publisher with a timer that runs whatever
clock the node is on, and a log that follows the statuses without repeating them.
"""
import threading
import time
from typing import Callable, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.publisher import Publisher


def diagnostics_publisher(node: Node, period_s: float, publish: Callable[[], None]
                          ) -> Publisher:
    """The `/diagnostics` publisher, and `publish` called every `period_s` seconds of steady
    time: a node on `use_sim_time` whose /clock is not (yet) published has a ROS time that
    stands still, and timers on it never fire, which would silence the diagnostics exactly
    when something needs saying."""
    publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
    node.create_timer(period_s, publish, clock=Clock(clock_type=ClockType.STEADY_TIME))
    return publisher


class ProblemLog:
    """Logs a status that is not OK (an error as an error, anything else as a warning): a new
    problem or a change of level at once, the same message never again, a changed text (a
    silence that grows, a count) at most every `interval_s`. An OK status clears it, so a
    problem that comes back is logged at once. One per rig or recorder: rclpy's own throttle
    is per line of code, so it would let one rig's problem hide another's. Thread-safe: the
    recorder's worker reports its write error while the diagnostics timer may be running."""

    def __init__(self, logger: RcutilsLogger, interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: Optional[str] = None
        self._level = DiagnosticStatus.OK
        self._logged_at = float('-inf')
        self._lock = threading.Lock()

    def update(self, level: bytes, message: str) -> None:
        with self._lock:
            if level == DiagnosticStatus.OK:
                self._last = None
                return
            now = self.clock()
            changed_level = self._last is None or level != self._level
            if message == self._last or (not changed_level
                                         and now - self._logged_at < self.interval_s):
                return
            if level == DiagnosticStatus.ERROR:    # two lines: rclpy's logger keeps one
                self.logger.error(message)          # severity per line, raises on another
            else:
                self.logger.warning(message)
            self._last, self._level, self._logged_at = message, level, now
