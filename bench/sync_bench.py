"""Synchroniser cost and correctness under load (pure Python, no DDS).

Cameras free-run at the same rate with independent stamp jitter and arrival delay, so
messages reach the synchroniser out of order across cameras. For 2-4 cameras, queue sizes
5-50 and rates up to 60 Hz it reports time per message, sets emitted and sets missed
(frames for which no set came out). JSON on stdout.

    python bench/sync_bench.py [--frames 3000]
"""
import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hil_serl_reward.pipeline.synchronizer import ApproximateTimeSync  # noqa: E402


def run(cameras: int, queue_size: int, rate: float, frames: int, jitter_s: float,
        delay_s: float, seed: int = 0) -> Dict:
    rng = random.Random(seed)
    period = 1.0 / rate
    slop = period / 2
    emitted: List[tuple] = []
    sync = ApproximateTimeSync(cameras, queue_size, slop, lambda m, s: emitted.append(s))
    events = []
    for frame in range(frames):
        tick = frame * period
        for cam in range(cameras):
            stamp = tick + rng.uniform(-jitter_s, jitter_s)
            arrival = stamp + rng.uniform(0, delay_s)
            events.append((arrival, cam, int(stamp * 1e9), frame))
    events.sort()
    start = time.perf_counter()
    for _, cam, stamp, frame in events:
        sync.add(cam, stamp, frame)
    elapsed = time.perf_counter() - start
    return {'cameras': cameras, 'queue_size': queue_size, 'rate_hz': rate,
            'slop_ms': round(slop * 1e3, 2), 'messages': len(events),
            'us_per_message': round(elapsed / len(events) * 1e6, 2),
            'sets_emitted': len(emitted), 'sets_missed': frames - len(emitted),
            'stale_refused': sum(sync.counts['stale']),
            'evicted': sum(sync.counts['evicted'])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=3000)
    parser.add_argument('--jitter-ms', type=float, default=3.0)
    parser.add_argument('--delay-ms', type=float, default=15.0,
                        help='largest transport delay; delays differ per message')
    args = parser.parse_args()
    results = [run(c, q, r, args.frames, args.jitter_ms / 1e3, args.delay_ms / 1e3)
               for c in (2, 3, 4) for q in (5, 10, 50) for r in (15.0, 30.0, 60.0)]
    print(json.dumps({'benchmark': 'synchroniser', 'jitter_ms': args.jitter_ms,
                      'delay_ms': args.delay_ms, 'frames_per_config': args.frames,
                      'results': results}, indent=2))


if __name__ == '__main__':
    main()
