"""A one-slot mailbox between DDS callbacks and the inference worker.

The producer never waits: a new item replaces the one not yet taken, and the replacement
is counted. The consumer therefore always works on the newest camera set and latency
cannot grow when inference is slower than the cameras. `waits` holds how long taken items
sat in the slot: the part of a set's latency spent behind the previous inference.

A node serving several rigs gives each rig a mailbox of its own, all made with one
`threading.Condition`, and its worker takes from all of them at once (`take_each`): every
rig's newest set that is waiting, as one batch.
"""
import threading
import time
from typing import Callable, Generic, List, Optional, Sequence, Tuple, TypeVar

from hil_serl_reward.pipeline.stats import Window

T = TypeVar('T')


class LatestMailbox(Generic[T]):
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 condition: Optional[threading.Condition] = None) -> None:
        """`condition`: the one lock and wake-up of a group of mailboxes read by take_each."""
        self._clock = clock
        self._posted_at = 0.0
        self.waits = Window()
        self._item: Optional[T] = None
        self._has_item = False
        self._closed = False
        self._cond = condition or threading.Condition()
        self.posted = 0
        self.replaced = 0

    def post(self, item: T) -> None:
        with self._cond:
            self.posted += 1
            if self._has_item:
                self.replaced += 1
            self._item, self._has_item = item, True
            self._posted_at = self._clock()
            self._cond.notify_all()

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """The newest item, waiting up to `timeout` (None: until one comes); None on
        timeout or once closed, even with an item left: a closed consumer is stopping."""
        taken = take_each([self], timeout)
        return taken[0][1] if taken else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _pop(self) -> T:
        """The item (the caller holds the condition and saw one)."""
        item, self._item, self._has_item = self._item, None, False
        self.waits.add(self._clock() - self._posted_at)
        return item


def take_each(mailboxes: Sequence[LatestMailbox[T]], timeout: Optional[float] = None
              ) -> Optional[List[Tuple[int, T]]]:
    """Waits up to `timeout` until any of `mailboxes` (sharing one condition) holds an item,
    then takes every item waiting, as (mailbox index, item) in mailbox order; never waits
    for the others, which would delay the set already there. None on timeout or once any
    mailbox is closed."""
    condition = mailboxes[0]._cond
    if any(box._cond is not condition for box in mailboxes):
        raise ValueError('take_each needs mailboxes made with one shared condition')
    with condition:
        condition.wait_for(lambda: any(box._has_item or box._closed for box in mailboxes),
                           timeout)
        if any(box._closed for box in mailboxes):
            return None
        taken = [(index, box._pop()) for index, box in enumerate(mailboxes) if box._has_item]
        return taken or None
