"""When each camera's frames arrived, for the latency budget's sync wait and the stall check.

A camera set is complete when its last frame arrives; its first frame has waited since its
own arrival. That wait (the synchroniser's share of a set's latency) needs each frame's
arrival time at the moment the set completes, so the arrival times of the frames the
synchroniser may still pair are kept: the newest `keep` per camera (its queue size). The
newest of them also says when a camera last got a frame through the node's checks.
"""
import collections
import time
from typing import Callable, Deque, List, Optional, Sequence, Tuple


class ArrivalTimes:
    def __init__(self, cameras: int, keep: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._clock = clock
        self._arrivals: List[Deque[Tuple[int, float]]] = [
            collections.deque(maxlen=keep) for _ in range(cameras)]

    def arrived(self, index: int, stamp_ns: int) -> None:
        self._arrivals[index].append((stamp_ns, self._clock()))

    def last(self, index: int) -> Optional[float]:
        """When camera `index`'s newest kept frame arrived (None: none since the start or
        the last clear)."""
        arrivals = self._arrivals[index]
        return arrivals[-1][1] if arrivals else None

    def sync_wait(self, stamps_ns: Sequence[int]) -> Optional[float]:
        """Seconds from the arrival of the set's first frame to now (the set's completion);
        None when a frame's arrival is no longer kept."""
        arrivals = []
        for index, stamp in enumerate(stamps_ns):
            found = [at for kept, at in self._arrivals[index] if kept == stamp]
            if not found:
                return None
            arrivals.append(found[-1])
        return self._clock() - min(arrivals)

    def clear(self) -> None:
        for arrivals in self._arrivals:
            arrivals.clear()
