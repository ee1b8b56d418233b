"""How the C allocator hands freed memory back to the system, set once when a process starts
(service, worker, CLI, an ingest's pool workers, Dask workers: `keep_freed_memory`).

SIFT builds its image pyramid afresh for every photo: a few dozen buffers of 1-11 MB, freed at
the end. glibc serves buffers that large with ``mmap`` or returns them to the system at once
(``munmap``, or trimming the heap's top), so every photo faulted its pyramid's pages in again
and the kernel zeroed them: on the 2-core reference machine 40 % of SIFT's time was the kernel's
(``perf``), and a museum photo at 640 px took 80 ms. Raising glibc's mmap threshold to 32 MB
(its ceiling on 64-bit systems) and keeping up to ``megabytes`` free at the heap's top, the
pages stay in the process and the same photo takes 42 ms, with the same keypoints (issue 13;
README, "Ingest speed and the CNN runtime"). The price: a process keeps, and RSS shows, up to
``megabytes`` it no longer uses after a peak.

glibc only (``mallopt``); elsewhere (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import logging
import platform

__all__ = ["MMAP_THRESHOLD", "keep_freed_memory"]

log = logging.getLogger(__name__)

# mallopt(3) parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Buffers up to this size come from the heap, whose freed pages can be kept: glibc's largest
#: allowed value on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``).
MMAP_THRESHOLD = 32 * 1024 * 1024


def keep_freed_memory(megabytes: int) -> bool:
    """Let this process keep up to ``megabytes`` of freed heap for reuse (0: glibc's default,
    untouched). Process-wide and idempotent. True where the allocator took the setting."""
    if megabytes <= 0 or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Both set explicitly: either one alone also freezes glibc's own adjustment of the other.
    took = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    took = mallopt(_M_TRIM_THRESHOLD, megabytes * 1024 * 1024) == 1 and took
    if not took:
        log.warning("the C allocator refused the setting to keep freed memory")
    return took
