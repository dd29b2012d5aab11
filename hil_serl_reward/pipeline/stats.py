"""Rolling statistics for diagnostics and benchmarks: percentiles and rates."""
import collections
import threading
import time
from typing import Deque, Dict, Optional

import numpy as np


class Window:
    """The last `size` samples of a quantity (e.g. a latency in seconds)."""

    def __init__(self, size: int = 500) -> None:
        self._values: Deque[float] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(value)

    def percentiles(self, *qs: float) -> Dict[str, Optional[float]]:
        with self._lock:
            values = np.asarray(self._values)
        return {f'p{q:g}': (float(np.percentile(values, q)) if values.size else None)
                for q in qs}


class RateMeter:
    """Events per second over the last `horizon_s`, and the time since the last event."""

    def __init__(self, horizon_s: float = 5.0, clock=time.monotonic) -> None:
        self._times: Deque[float] = collections.deque()
        self._horizon = horizon_s
        self._clock = clock
        self._lock = threading.Lock()
        self.count = 0
        self.last: Optional[float] = None

    def tick(self) -> None:
        with self._lock:
            now = self._clock()
            self._times.append(now)
            self.count += 1
            self.last = now
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._horizon:
            self._times.popleft()

    def rate(self) -> float:
        with self._lock:
            now = self._clock()
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)

    def silent_for(self) -> Optional[float]:
        """Seconds since the last event, None if there was none."""
        with self._lock:
            return None if self.last is None else self._clock() - self.last
