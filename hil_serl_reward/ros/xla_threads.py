"""XLA:CPU's compute threads, each pinned to a CPU of its own (the node's `pin_xla_threads`).

XLA:CPU runs a model's parallel loops on a pool of threads, one per CPU (named
`tf_XLAEigen` by jaxlib 0.10). Measured on the project's 2-vCPU VMs (docs/performance.md):
called once per camera period, the model took about twice its back-to-back time (15 Hz:
8.4-10.5 ms against 4.2-5.2), and one CPU alone paid only 1.05-1.13x: after an idle period
the kernel wakes the pool's threads on one CPU and runs them in turn until it balances them
out. With each thread pinned to a CPU of its own the same paced call took 5.1-5.7 ms (back
to back 4.3-4.5). Pinning costs no CPU time; it only takes from the kernel the choice of
where those threads run, so `pin_xla_threads: false` gives it back (say, on a PC whose other
work needs a CPU to itself; CPUs outside the node's affinity mask are never used either way).
"""
import os
from typing import Dict, List, Optional, Sequence

COMPUTE_THREAD_NAME = 'tf_XLAEigen'


def compute_threads(task_dir: str = '/proc/self/task') -> List[int]:
    """The thread ids of XLA:CPU's compute pool in this process, in creation order (none
    before JAX's CPU client exists, or where jaxlib names them otherwise)."""
    found = []
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, 'comm')) as comm:
                if comm.read().strip() == COMPUTE_THREAD_NAME:
                    found.append(int(tid))
        except OSError:                 # a thread that ended while we looked
            continue
    return sorted(found)


def pin_compute_threads(cpus: Optional[Sequence[int]] = None) -> Dict[int, int]:
    """Pins each compute thread to one of `cpus` (default: the CPUs this process may run
    on), in turn; returns {thread id: CPU}. More threads than CPUs share them in turn."""
    allowed = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    pinned = {}
    for index, tid in enumerate(compute_threads()):
        cpu = allowed[index % len(allowed)]
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:                 # ended meanwhile
            continue
        pinned[tid] = cpu
    return pinned


def describe(pinned: Dict[int, int]) -> str:
    """For diagnostics: which CPUs the pool's threads run on."""
    if not pinned:
        return f'no {COMPUTE_THREAD_NAME} threads found: not pinned'
    return (f'{len(pinned)} thread(s) pinned to CPU(s) '
            f'{", ".join(map(str, sorted(set(pinned.values()))))}')
