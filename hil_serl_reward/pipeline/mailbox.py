"""A one-slot mailbox between DDS callbacks and the inference worker.

The producer never waits: a new item replaces the one not yet taken, and the replacement
is counted. The consumer therefore always works on the newest camera set and latency
cannot grow when inference is slower than the cameras. `waits` holds how long taken items
sat in the slot: the part of a set's latency spent behind the previous inference.
"""
import threading
import time
from typing import Callable, Generic, Optional, TypeVar

from hil_serl_reward.pipeline.stats import Window

T = TypeVar('T')


class LatestMailbox(Generic[T]):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._posted_at = 0.0
        self.waits = Window()
        self._item: Optional[T] = None
        self._has_item = False
        self._closed = False
        self._cond = threading.Condition()
        self.posted = 0
        self.replaced = 0

    def post(self, item: T) -> None:
        with self._cond:
            self.posted += 1
            if self._has_item:
                self.replaced += 1
            self._item, self._has_item = item, True
            self._posted_at = self._clock()
            self._cond.notify()

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """The newest item, waiting up to `timeout` (None: until one comes); None on
        timeout or once closed, even with an item left: a closed consumer is stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._has_item or self._closed, timeout)
            if self._closed or not self._has_item:
                return None
            item, self._item, self._has_item = self._item, None, False
            self.waits.add(self._clock() - self._posted_at)
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
