"""glibc's allocator, set for a process that allocates and frees large tensors batch after batch.

By default glibc hands memory it gets back to the system as soon as a batch's tensors are freed,
and the next batch takes it again: every page then costs a page fault and is zeroed by the
kernel: `phototag eval` spent more time in the kernel than in the network (docs/speed.md).
Here freed memory is kept for the next batch: `train`, `eval` and `index` set it, at the cost of
a larger process. Linux with glibc only; elsewhere nothing changes.
"""

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks above it are mapped (and returned) alone
TRIM_THRESHOLD = 1 << 30  # free memory at the top of the heap is kept up to this much
TOP_PAD = 1 << 30  # the heap grows by this much at a time (address space, not memory used)
INDEX_KEEP = 128 << 20  # what an index run keeps: its peak stays bounded (docs/speed.md)


def keep_freed_memory(keep=TRIM_THRESHOLD):
    """Keep up to ``keep`` bytes freed at the top of the heap for the next allocations (train
    and eval keep the default, an index run keeps less); True where it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, keep),
        (M_TOP_PAD, min(keep, TOP_PAD))))
