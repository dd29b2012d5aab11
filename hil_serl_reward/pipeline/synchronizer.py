"""Approximate-time synchronisation of N camera streams (pure Python, no ROS).

Written from the documented behaviour of message_filters' Python
ApproximateTimeSynchronizer (ros2-environment.md §6), for installs that lack it. What it
keeps: a queue per input keyed by stamp, a same-stamp message replacing the queued one,
eviction of the oldest stamp past `queue_size`, and a search around each new message for
one message per other input. Where ours deliberately differs:

* Sets are monotonic: once a set is emitted, every queued message not newer than its
  member on the same input is discarded, and later arrivals that old are refused
  (counted as `stale`). message_filters can emit an older set after a newer one.
* The spread rule is inclusive, `max - min <= slop`: two frames exactly `slop` apart match
  (message_filters needs a strictly smaller spread, so such a pair never matches).
* Among the sets that contain the new message it picks the one of smallest spread, not the
  first in candidate order; the choice does not depend on the order messages were queued.
* The callback runs after the internal lock is released, so slow work there never blocks
  other inputs (the node's callback only posts to a mailbox anyway).
"""
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

SetCallback = Callable[[Tuple[Any, ...], Tuple[int, ...]], None]


class ApproximateTimeSync:
    """Feed `add(input_index, stamp_ns, message)`; matched sets go to the callback."""

    backend = 'hil_serl_reward'

    def __init__(self, num_inputs: int, queue_size: int, slop_s: float,
                 callback: SetCallback) -> None:
        if num_inputs < 1:
            raise ValueError('need at least one input')
        if queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        if slop_s < 0:
            raise ValueError(f'slop must be >= 0, got {slop_s}')
        self._queues: List[Dict[int, Any]] = [{} for _ in range(num_inputs)]
        self._emitted: List[Optional[int]] = [None] * num_inputs
        self._queue_size = queue_size
        self._slop_ns = int(round(slop_s * 1e9))
        self._callback = callback
        self._lock = threading.Lock()
        self.counts = {'received': [0] * num_inputs, 'evicted': [0] * num_inputs,
                       'stale': [0] * num_inputs, 'pruned': [0] * num_inputs, 'sets': 0}

    def add(self, index: int, stamp_ns: int, message: Any) -> bool:
        """Queue one message; returns False when it was refused as older than an emitted set."""
        with self._lock:
            self.counts['received'][index] += 1
            emitted = self._emitted[index]
            if emitted is not None and stamp_ns <= emitted:
                self.counts['stale'][index] += 1
                return False
            queue = self._queues[index]
            queue[stamp_ns] = message
            if len(queue) > self._queue_size:
                del queue[min(queue)]
                self.counts['evicted'][index] += 1
            if stamp_ns not in queue:
                return True
            match = self._best_set(index, stamp_ns)
            if match is None:
                return True
            messages = tuple(self._queues[i][s] for i, s in enumerate(match))
            self._consume(match)
        self._callback(messages, match)
        return True

    def _best_set(self, pivot_index: int, pivot: int) -> Optional[Tuple[int, ...]]:
        """The smallest-spread set containing the pivot message, spread <= slop."""
        slop = self._slop_ns
        candidates: List[List[int]] = []
        for i, queue in enumerate(self._queues):
            if i == pivot_index:
                candidates.append([pivot])
                continue
            near = [s for s in queue if abs(s - pivot) <= slop]
            if not near:
                return None
            candidates.append(near)
        starts = sorted({s for c in candidates for s in c if pivot - slop <= s <= pivot})
        best: Optional[Tuple[int, ...]] = None
        best_spread = None
        for start in starts:
            window_end = start + slop
            chosen = []
            for options in candidates:
                inside = [s for s in options if start <= s <= window_end]
                if not inside:
                    break
                chosen.append(min(inside, key=lambda s: (abs(s - pivot), s)))
            else:
                spread = max(chosen) - min(chosen)
                if best_spread is None or spread < best_spread:
                    best, best_spread = tuple(chosen), spread
        return best

    def _consume(self, match: Sequence[int]) -> None:
        for i, stamp in enumerate(match):
            queue = self._queues[i]
            old = [s for s in queue if s <= stamp]
            for s in old:
                del queue[s]
            self.counts['pruned'][i] += len(old) - 1
            self._emitted[i] = stamp
        self.counts['sets'] += 1

    def set_slop(self, slop_s: float) -> None:
        """Change the largest spread of a set (the auto slop follows the measured rates)."""
        with self._lock:
            self._slop_ns = int(round(slop_s * 1e9))

    def reset(self) -> None:
        """Forget every queued message and emitted set: the stamps start a new timeline."""
        with self._lock:
            for queue in self._queues:
                queue.clear()
            self._emitted = [None] * len(self._queues)

    def pending(self) -> List[int]:
        with self._lock:
            return [len(q) for q in self._queues]
