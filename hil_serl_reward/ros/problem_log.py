"""Logging what diagnostics report, without repeating it: the diagnostics timer builds the
status every period, and a log line each time would bury the line that says what changed.
"""
import threading
import time
from typing import Callable, Optional

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.impl.rcutils_logger import RcutilsLogger


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
        self.last: Optional[str] = None
        self._level = DiagnosticStatus.OK
        self._logged_at = float('-inf')
        self._lock = threading.Lock()

    def update(self, level: bytes, message: str) -> None:
        with self._lock:
            if level == DiagnosticStatus.OK:
                self.last = None
                return
            now = self.clock()
            changed_level = self.last is None or level != self._level
            if message == self.last or (not changed_level
                                        and now - self._logged_at < self.interval_s):
                return
            if level == DiagnosticStatus.ERROR:    # two lines: rclpy's logger keeps one
                self.logger.error(message)          # severity per line, raises on another
            else:
                self.logger.warning(message)
            self.last, self._level, self._logged_at = message, level, now
