"""The glibc malloc setting our image-handling processes start with.

Every camera message passes through several image-sized buffers (rclpy's C message, the
Python message's array, the CDR buffer), and every batch of sets through XLA's scratch
buffer (33 MB for 8 sets on the CPU). glibc serves blocks above its mmap threshold (at most
32 MB) with fresh pages from the kernel and gives the top of the heap back once more than
its trim threshold is free, so each such buffer page-faults again on every use: measured on
the project's VM, 868 faults for four copies of one 921,600-byte image, and a median
camera-to-subscriber transport of 7-8 ms that falls to about 3 ms once freed buffers stay in
the heap (README, Performance); on a Zen 5 VM, batch 8 at 178-194 sets/s with the mmap
threshold at its 32 MB maximum, 223-286 with no block mmapped (docs/performance.md). So no
block is mmapped (M_MMAP_MAX 0: glibc still maps its heaps) and the heap keeps up to
TRIM_THRESHOLD_BYTES free for the next message or batch; the price is that the process
keeps its peak heap instead of returning it.
A user's own malloc setting (MALLOC_*_ or glibc.malloc tunables) is left alone.
"""
import ctypes
import os
from typing import Mapping

M_TRIM_THRESHOLD = -1          # <malloc.h>
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 256 * 2**20
USER_VARIABLES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_',
                  'MALLOC_MMAP_MAX_')

_setting = 'glibc default'


def keep_large_buffers(environ: Mapping[str, str] = os.environ) -> bool:
    """Serves every block from the heap and raises the trim threshold; False when the user
    chose or there is no glibc mallopt (the process then runs with its allocator's
    defaults)."""
    global _setting
    if any(v in environ for v in USER_VARIABLES) or 'glibc.malloc.' in environ.get(
            'GLIBC_TUNABLES', ''):
        _setting = 'user setting (environment)'
        return False
    mallopt = getattr(ctypes.CDLL(None), 'mallopt', None)
    if mallopt is None or not (mallopt(M_MMAP_MAX, 0)
                               and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        _setting = 'allocator default (no glibc mallopt)'
        return False
    _setting = (f'large buffers kept (no mmapped blocks, trim threshold '
                f'{TRIM_THRESHOLD_BYTES >> 20} MB)')
    return True


def malloc_setting() -> str:
    """What keep_large_buffers did in this process, for diagnostics."""
    return _setting
