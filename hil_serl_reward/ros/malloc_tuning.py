"""The glibc malloc setting our image-handling processes start with.

Every camera message passes through several image-sized buffers (rclpy's C message, the
Python message's array, the CDR buffer). glibc serves blocks above its mmap threshold with
fresh pages from the kernel and gives the top of the heap back once more than its trim
threshold is free, so each copy of a 640x480 image page-faults again: measured on the
project's VM, 868 faults for four copies of one 921,600-byte image, and a median
camera-to-subscriber transport of 7-8 ms that falls to about 3 ms once freed buffers stay in
the heap (README, Performance). Raising both thresholds keeps them there for the next
message; the price is that the process keeps its peak heap instead of returning it.
A user's own malloc setting (MALLOC_*_ or glibc.malloc tunables) is left alone.
XLA:CPU's scratch buffer for a batch of 8 sets (33 MB) is above the largest mmap threshold
and page-faults on every call; serving every block from the heap (M_MMAP_MAX 0) made batch 8
1.2-1.5x faster on a Zen 5 VM, but with it the node of test_classifier_node's 15 fps reload
test lost its answer to the first parameter request after the benchmark tests had run in
the same session (3 of 3 runs; Fast DDS: "failed to send response (timeout)", the client's
reply reader not yet matched; why the setting changes that timing was not found), so it is
not set: the classifier instead calls XLA on batches whose scratch fits under the threshold
(model/inference.largest_heap_batch; docs/performance.md).
"""
import ctypes
import os
from typing import Mapping

from hil_serl_reward.model.constants import GLIBC_MMAP_THRESHOLD_MAX

M_TRIM_THRESHOLD = -1          # <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = GLIBC_MMAP_THRESHOLD_MAX     # covers 4K rgb8 frames
TRIM_THRESHOLD_BYTES = 256 * 2**20
USER_VARIABLES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_')

_setting = 'glibc default'


def keep_image_buffers(environ: Mapping[str, str] = os.environ) -> bool:
    """Raises glibc's mmap and trim thresholds; False when the user chose or there is no
    glibc mallopt (the process then runs with its allocator's defaults)."""
    global _setting
    if any(v in environ for v in USER_VARIABLES) or 'glibc.malloc.' in environ.get(
            'GLIBC_TUNABLES', ''):
        _setting = 'user setting (environment)'
        return False
    mallopt = getattr(ctypes.CDLL(None), 'mallopt', None)
    if mallopt is None or not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                               and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        _setting = 'allocator default (no glibc mallopt)'
        return False
    _setting = (f'image buffers kept (mmap threshold {MMAP_THRESHOLD_BYTES >> 20} MB, '
                f'trim threshold {TRIM_THRESHOLD_BYTES >> 20} MB)')
    return True


def malloc_setting() -> str:
    """What keep_image_buffers did in this process, for diagnostics."""
    return _setting
