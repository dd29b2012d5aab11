"""How far apart the frames of one synchronised set may be, from the cameras' own stamps.

Free-running cameras (hil-serl's RealSense cameras are not hardware-synchronised) keep a
fixed, arbitrary phase offset. With N cameras at period T the closest set of one frame each
is up to (1 - 1/N) x T wide (the widest gap between the N phases on the period's circle is at
least T/N): half a period for two cameras, 33.3 ms at 15 fps. A smaller slop builds no set at
all for some phases, so `sync_slop: 0` (the default) derives the slop from the measured
periods and jitter; a configured slop gets a warning when the measurement shows it is too
small for some phase.
"""
import collections
import statistics
from typing import Deque, List, Optional, Sequence, Tuple

MIN_DELTAS = 10             # stamp intervals per camera before its period is trusted
WINDOW = 60                 # intervals kept per camera
MARGIN_S = 0.001            # on top of twice the measured jitter
MAX_GAP_S = 1.0             # a longer interval is a pause or a new timeline, not a period
PROVISIONAL_PERIOD_S = 1 / 15   # assumed until measured: hil-serl's cameras run at 15 fps
UPDATE_RATIO = 0.1          # auto slop follows the measurement once it moves by 10 %


def needed_slop(periods: Sequence[float], jitters: Sequence[float]) -> float:
    """The slop that matches every frame of the slowest camera at any phase offset."""
    cameras = len(periods)
    if cameras < 2:
        return 0.0
    return (1 - 1 / cameras) * max(periods) + 2 * max(jitters, default=0.0) + MARGIN_S


def describe(periods: Sequence[float], jitters: Sequence[float]) -> str:
    return ', '.join(f'{1 / p:.1f} Hz' for p in periods) + f', jitter {max(jitters) * 1e3:.1f} ms'


class StampPeriods:
    """Median stamp interval and its spread per camera, over the last WINDOW frames."""

    def __init__(self, cameras: int) -> None:
        self._deltas: List[Deque[float]] = [collections.deque(maxlen=WINDOW)
                                            for _ in range(cameras)]
        self._last: List[Optional[int]] = [None] * cameras

    def add(self, index: int, stamp_ns: int) -> None:
        last, self._last[index] = self._last[index], stamp_ns
        if last is not None and 0 < stamp_ns - last <= MAX_GAP_S * 1e9:
            self._deltas[index].append((stamp_ns - last) / 1e9)

    def reset(self) -> None:
        for deltas in self._deltas:
            deltas.clear()
        self._last = [None] * len(self._last)

    def measured(self) -> bool:
        return all(len(d) >= MIN_DELTAS for d in self._deltas)

    def measure(self) -> Tuple[List[float], List[float]]:
        """(median interval, 90th percentile of |interval - median|) per camera."""
        periods, jitters = [], []
        for deltas in self._deltas:
            period = statistics.median(deltas)
            spread = sorted(abs(d - period) for d in deltas)
            periods.append(period)
            jitters.append(spread[int(0.9 * (len(spread) - 1))])
        return periods, jitters


class SlopPolicy:
    """The slop in force: the configured one, or (configured 0) one derived from the stamps.

    `observe` returns a line to log when something changed: the auto slop moved, or the
    measurement shows a configured slop cannot match some phase (said once)."""

    def __init__(self, configured_s: float, cameras: int) -> None:
        self.auto = configured_s == 0
        self.cameras = cameras
        self.periods = StampPeriods(cameras)
        self.slop_s = needed_slop([PROVISIONAL_PERIOD_S] * cameras, [0.0] * cameras) \
            if self.auto else configured_s
        self._warned = False
        self._seen = 0

    def observe(self, index: int, stamp_ns: int) -> Optional[str]:
        self.periods.add(index, stamp_ns)
        self._seen += 1
        if self.cameras < 2 or self._seen % self.cameras or not self.periods.measured():
            return None
        periods, jitters = self.periods.measure()
        needed = needed_slop(periods, jitters)
        if self.auto:
            if abs(needed - self.slop_s) <= UPDATE_RATIO * self.slop_s:
                return None
            self.slop_s = needed
            return f'sync_slop auto: {needed:.4f} s ({describe(periods, jitters)})'
        if needed > self.slop_s and not self._warned:
            self._warned = True
            return (f'sync_slop {self.slop_s:g} s is below what free-running cameras at these '
                    f'rates need at some phase offsets ({needed:.4f} s: '
                    f'{describe(periods, jitters)}); no set may be built for minutes at a '
                    f'time. Set sync_slop: 0 (auto) or at least {needed:.3f}')
        return None

    def describe_rates(self) -> str:
        if not self.periods.measured():
            return 'rates not measured yet'
        return describe(*self.periods.measure())

    def reset(self) -> None:
        self.periods.reset()
