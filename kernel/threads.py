"""Thread pools of the native libraries, set once when a process starts (service, worker,
CLI: `configure_threads`).

numpy's OpenBLAS starts one thread per core. On the 2-core reference machine its threads
fought torch's and OpenCV's for the cores: with one BLAS thread a query's p50 went from 163
to 127 ms with 39 % less CPU, and under load verification no longer inflated tenfold (issue
13). The vector search itself is FAISS (its own OpenMP pool); numpy's BLAS only does the
small products of a query (similarities of a few vectors), which one thread does as fast.

torch's threads are the embedder's (``ARTMATCH_EMBEDDER__THREADS``, set where the CNN is
built: `models.embedders`). OpenCV keeps its default (one per core) unless the setting says
otherwise: the query's SIFT measured faster with both cores.

Set at run time through threadpoolctl for the libraries already loaded (OpenBLAS takes the
limit only from the process's main thread: measured, a call from another thread is ignored, so
the entry points call this where they start, in the main thread), and through
``OPENBLAS_NUM_THREADS`` for those loaded later and for child processes. The CLI gets here
before numpy is imported: threadpoolctl alone had limited nothing there, and numpy's OpenBLAS
thread spun between calls beside an ingest's two workers (13 s of CPU in a 94 s import of
3,982 photos, `perf`). FAISS's own OpenBLAS is an OpenMP build that ignores the variable; it
follows FAISS's OpenMP threads (`faiss_threads`) unless threadpoolctl found it loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kernel.settings import ThreadSettings

__all__ = ["blas_threads", "configure_threads", "faiss_threads"]


def configure_threads(settings: ThreadSettings) -> None:
    """Limit numpy's BLAS and OpenCV to the threads ``settings`` names (0: their default).

    Process-wide and idempotent; libraries loaded later (torch's own BLAS) are not touched.
    """
    if settings.blas > 0:
        from threadpoolctl import threadpool_limits

        # The OpenBLAS copies loaded from now on (numpy's and OpenCV's read it as they load)
        # and the processes this one starts: the CLI gets here before numpy is imported,
        # when threadpoolctl finds nothing to limit.
        os.environ["OPENBLAS_NUM_THREADS"] = str(settings.blas)
        threadpool_limits(limits=settings.blas, user_api="blas")  # those already loaded
    if settings.opencv > 0:
        import cv2

        cv2.setNumThreads(settings.opencv)


def blas_threads() -> dict[str, Any]:
    """``{library file: threads}`` of every BLAS loaded in this process (for `artmatch`
    diagnostics and tests)."""
    from threadpoolctl import threadpool_info

    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@contextmanager
def faiss_threads(threads: int) -> Iterator[None]:
    """FAISS's OpenMP threads limited to ``threads`` for the block, then restored.

    For a process whose cores are taken by others (an ingest's worker pool): OpenMP's idle
    threads spin-wait for work, and beside two busy workers on 2 cores the descriptor index's
    add took 7 ms a photo instead of 1 (`scripts/bench_ingest.py`).
    """
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
