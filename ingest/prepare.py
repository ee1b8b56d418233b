"""The CPU-heavy, storage-free part of adding a photo: decode, thumbnail, local features, and
the CNN vector where the embedder can travel to a worker.

It runs in a pool of worker processes (`PhotoPreparer`) while the calling process does the
writes, so an ingest uses every core. Measured on the 2-core reference machine (museum photos,
one thread each): decode 2, thumbnail 4, SIFT 42-46 (58-66 before workers kept freed memory,
`kernel.memory`; 80 in a fresh process), compressing the features 0.4, the CNN 11 ms with its
resize. Workers get bytes and give back what was computed, not the decoded picture: sending a
picture back cost more CPU than computing the vector from it (~50 ms a photo, issue 13). They
never touch storage, so the writes stay in one process and in input order.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import select
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from kernel.errors import ArtmatchError
from kernel.memory import keep_freed_memory
from models.embedders import Embedder
from models.images import DecodedImage, configure_decoding, decode_image, make_thumbnail
from models.local_features import LocalFeatures, extract_local_features

__all__ = [
    "PhotoLimits",
    "default_workers",
    "exit_with",
    "PhotoPreparer",
    "Prepared",
    "Refused",
    "portable_embedder",
    "prepare_photo",
]


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoLimits:
    """What a worker needs to know of the settings."""

    max_pixels: int
    max_bytes: int
    max_concurrent_decodes: int
    thumbnail_px: int
    #: Extract local features (verification is on).
    features: bool
    #: Freed memory a worker keeps for reuse (`kernel.memory.keep_freed_memory`).
    keep_freed_mb: int = 0


@dataclass(frozen=True)
class Prepared:
    sha256: str  #: of the original bytes
    format: str  #: e.g. "JPEG"
    #: (width, height) of the original photo, upright.
    original_size: tuple[int, int]
    #: The decoded picture, for what is still to be computed from it here; None once
    #: everything was (see `prepare_photo`).
    image: DecodedImage | None
    #: None where computing it failed: the write step computes it again, so that the photo
    #: fails there with the message it always had ("could not be stored").
    thumbnail: bytes | None
    features: LocalFeatures | None
    features_blob: bytes | None
    #: The CNN vector, where the worker had the embedder (None: the calling process embeds).
    vector: np.ndarray | None = None


@dataclass(frozen=True)
class Refused:
    """A photo that could not be decoded: ``message`` for the user, or ``trace`` (the
    traceback of an error no check foresaw) for the log."""

    message: str = ""
    trace: str | None = None


def prepare_photo(
    data: bytes, *, source: str, limits: PhotoLimits, embedder: Embedder | None = None
) -> Prepared | Refused:
    """Decode ``data`` and compute what the stored photo needs. The vector is computed with
    ``embedder``, or in a pool's worker with the embedder it was started with."""
    try:
        image = decode_image(
            data, source=source, max_pixels=limits.max_pixels, max_bytes=limits.max_bytes
        )
    except ArtmatchError as exc:
        return Refused(str(exc))
    except OSError as exc:
        return Refused(f"{source}: cannot read file ({exc.strerror or exc})")
    except Exception:
        return Refused(trace=traceback.format_exc())
    thumbnail = features = blob = vector = None
    try:
        thumbnail = make_thumbnail(image.image, max_side=limits.thumbnail_px)
        if limits.features:
            features = extract_local_features(image.to_array())
            blob = features.to_bytes()
    except Exception:  # noqa: S110 - computed again, and reported, by the write step
        pass
    embedder = embedder or _worker_embedder
    if embedder is not None:
        # On failure embedded again, and reported, by the write step.
        with contextlib.suppress(Exception):
            vector = embedder.embed([image.image])[0]
    done = (
        thumbnail is not None and vector is not None and (blob is not None or not limits.features)
    )
    # The cached pixel array would double what goes back to the calling process.
    image.__dict__.pop("array", None)
    return Prepared(
        sha256=image.sha256,
        format=image.format,
        original_size=image.original_size or image.size,
        image=None if done else image,
        thumbnail=thumbnail,
        features=features,
        features_blob=blob,
        vector=vector,
    )


#: The embedder a pool's worker was started with (`_init_worker`); None in other processes.
_worker_embedder: Embedder | None = None


def portable_embedder(embedder: Embedder) -> Embedder | None:
    """``embedder`` if a worker can run it (it says ``portable = True``: it pickles small and
    starts fast, as ONNX Runtime's does), else None: the calling process embeds."""
    return embedder if getattr(embedder, "portable", False) else None


def _init_worker(
    max_bytes: int,
    max_concurrent: int,
    keep_freed_mb: int,
    embedder: bytes | None,
    caller: int | None = None,
) -> None:
    import cv2

    global _worker_embedder
    if caller is not None:
        exit_with(caller)
    # One worker per core already: OpenCV's own threads would only fight over them.
    cv2.setNumThreads(1)
    # SIFT's pyramid buffers reused from photo to photo, not faulted in afresh (80 -> 42 ms).
    keep_freed_memory(keep_freed_mb)
    configure_decoding(max_bytes=max_bytes, max_concurrent=max_concurrent)
    # Unpickled here, not with the worker's arguments: an embedder that cannot start in a
    # worker (its model file gone, no memory for a session) must not break the pool. The
    # photos then come back with their pictures and the calling process embeds them.
    try:
        _worker_embedder = pickle.loads(embedder) if embedder else None
    except Exception:
        _worker_embedder = None
        log.warning("the embedder did not start in an ingest worker; embedding in the caller")


def exit_with(caller: int) -> None:
    """End this process as soon as process ``caller`` (the one that started the pool) ends.

    Nothing else would: a pool's workers wait on a queue whose write end each of them holds
    too, and the forkserver stays up while its children hold its pipe, so an import killed
    with SIGKILL (or by the kernel's OOM killer) left its workers and the forkserver alive
    for good, ~130 MB each (seen after the crash-recovery test). A thread waits on a pidfd
    of the caller (Linux), else checks every second that it still exists.
    """
    try:
        handle: int | None = os.pidfd_open(caller)
    except ProcessLookupError:
        os._exit(_ORPHANED)
    except (AttributeError, OSError):  # not Linux, or a kernel before 5.3
        handle = None

    def wait() -> None:
        if handle is not None:
            select.select([handle], [], [])  # readable once the process has ended
        else:
            while _exists(caller):
                time.sleep(1.0)
        os._exit(_ORPHANED)

    threading.Thread(target=wait, name="artmatch-caller-watch", daemon=True).start()


#: The exit status of a worker whose caller ended before it.
_ORPHANED = 3


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def _context() -> multiprocessing.context.BaseContext:
    # Never fork: the calling process holds threads (ONNX Runtime, the web server's) and
    # open database connections. forkserver starts workers cheaply where it exists.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def default_workers() -> int:
    """Workers when the setting says 0: one per core (see README, "Ingest speed")."""
    return os.cpu_count() or 1


class PhotoPreparer:
    """Runs `prepare_photo` in ``workers`` processes, or in this one when ``workers`` <= 1.

    A worker that dies (a decoder crashing on one odd file) breaks the pool: the photos it
    held are tried again one at a time in a new pool, so only the culprit fails.
    """

    #: What a worker runs on each photo (a test swaps in one that crashes).
    task: Callable[..., Prepared | Refused] = staticmethod(prepare_photo)

    def __init__(
        self, *, workers: int, limits: PhotoLimits, embedder: Embedder | None = None
    ) -> None:
        self.workers = workers if workers > 0 else default_workers()
        if multiprocessing.current_process().daemon:
            # A daemonic process (a multiprocessing worker running jobs) may not start
            # children: prepare here instead of failing the ingest.
            self.workers = 1
        self.limits = limits
        #: Run in the workers (`portable_embedder`); None: the calling process embeds.
        self.embedder = embedder
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_context(),
                initializer=_init_worker,
                initargs=(
                    self.limits.max_bytes,
                    self.limits.max_concurrent_decodes,
                    self.limits.keep_freed_mb,
                    pickle.dumps(self.embedder) if self.embedder is not None else None,
                    os.getpid(),
                ),
            )
        return self._pool

    def submit(self, data: bytes, *, source: str) -> Future[Prepared | Refused]:
        if self.workers <= 1:
            done: Future[Prepared | Refused] = Future()
            done.set_result(self.task(data, source=source, limits=self.limits))
            return done
        try:
            return self._executor().submit(self.task, data, source=source, limits=self.limits)
        except BrokenProcessPool:
            self._drop()
            return self._executor().submit(self.task, data, source=source, limits=self.limits)

    def result(
        self, future: Future[Prepared | Refused], data: bytes, *, source: str
    ) -> Prepared | Refused:
        """The future's result; if its pool broke, the photo alone in a new pool."""
        try:
            return future.result()
        except (BrokenProcessPool, CancelledError):
            pass
        for _ in range(2):
            try:
                return self.submit(data, source=source).result()
            except BrokenProcessPool:
                self._drop()
        return Refused(trace=f"{source}: the worker preparing it died")

    def _drop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> PhotoPreparer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
