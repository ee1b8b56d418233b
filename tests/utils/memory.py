"""What glibc's allocator holds, for tests of `kernel.memory` (glibc only)."""

from __future__ import annotations

import ctypes


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def mapped_with_a_large_buffer(size: int = 16 * 2**20) -> int:
    """Bytes glibc serves by mmap while a ``size`` buffer is alive (a SIFT pyramid's largest
    layers are 1-11 MB): mmap'd buffers go back to the system, page by page, when freed."""
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _MallInfo2
    buffer = bytearray(size)
    mapped = int(mallinfo2().hblkhd)
    del buffer
    return mapped
