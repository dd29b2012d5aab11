"""Idle-priority tickers that keep this process's CPUs answering between camera frames
(the node's `keep_cpus_awake`).

Measured on the project's 2-vCPU VMs (docs/performance.md): the model called once per camera
period takes about twice its back-to-back time (at 15 Hz 17.7-18.9 ms against 9.6-10.0), as a
CPU left idle for more than ~20 ms comes back slow for the call's many short parallel loops.
Keeping the CPUs busy does not cure it (two busy loops at idle priority: 17.7-18.5 ms, and
they slowed back-to-back calls as much); waking each CPU every 0.2 ms does: 10.7-12.2 ms, for
0.03-0.06 cores in all (0.03 in model_bench's run, as README and the parameter say); in a
later session's runs 1.04-1.26x back to back, not better at 0.1 or 0.05 ms. So: one helper
process with one thread per CPU this process may run on, pinned to it at SCHED_IDLE
priority (anything else that wants the CPU gets it), sleeping 0.2 ms at a time. The helper
reads its stdin until the node's end of the pipe closes, so it ends with the node however the
node ends (a SIGKILL included); it ignores Ctrl-C, which a terminal sends to the node's whole
process group, and leaves that to the node.

Later the cause was found to be where the kernel woke XLA's compute threads (both on one
CPU); pinning them (xla_threads.py, `pin_xla_threads`) took a 15 Hz call to 1.2x back to back,
and on top of that the tickers added nothing measurable on the Zen 5 VM (docs/performance.md).
The node runs it by default while it serves on the CPU (never for a GPU), except while it
holds the kernel's CPU latency request at 0 (`cpu_latency_limit_us`, cpu_latency.py): CPUs that
poll need no waking, and calls were slower with both. It was measured on VMs; on a robot's
real-time PC, where thousands of wake-ups per second on each core may be noise its control
loops do not want, `keep_cpus_awake: false` turns it off (cores kept out of the node's
affinity mask, such as isolcpus cores, get no ticker either way).
"""
import os
import subprocess
import sys
import time
from typing import Iterable, Optional

PERIOD_S = 2e-4

TICKER = '''
import os, signal, sys, threading, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
period = float(sys.argv[1])

def tick(cpu):
    thread = threading.get_native_id()
    os.sched_setaffinity(thread, {cpu})
    os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
    while True:
        time.sleep(period)

for cpu in map(int, sys.argv[2:]):
    threading.Thread(target=tick, args=(cpu,), daemon=True).start()
sys.stdin.read()
'''


class CpuTickers:
    """The helper process; `close()` (or leaving a `with`) ends it."""

    def __init__(self, cpus: Optional[Iterable[int]] = None, period_s: float = PERIOD_S
                 ) -> None:
        self.cpus = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
        self.period_s = period_s
        self._process = subprocess.Popen(
            [sys.executable, '-c', TICKER, str(period_s), *map(str, self.cpus)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self._started = time.monotonic()

    @property
    def pid(self) -> int:
        return self._process.pid

    def cores(self) -> float:
        """CPU the tickers used since they started, in cores (their cost)."""
        try:
            fields = open(f'/proc/{self.pid}/stat').read().rsplit(')', 1)[1].split()
        except OSError:
            return 0.0
        cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
        return cpu_s / max(time.monotonic() - self._started, 1e-9)

    def describe(self) -> str:
        return (f'{len(self.cpus)} CPU(s) woken every {self.period_s * 1e3:g} ms, '
                f'{self.cores():.3f} cores')

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> 'CpuTickers':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
