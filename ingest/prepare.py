"""The CPU-heavy, storage-free part of adding a photo: decode, thumbnail, local features.

It runs in a pool of worker processes (`PhotoPreparer`) while the calling process runs the
CNN and the writes, so an ingest uses every core: one photo's preparation takes ~40 ms of
CPU (decode 2, thumbnail 4, SIFT 28, compressing the features 5), its CNN pass 5-11 ms.
Workers get bytes and give back the decoded picture and what was computed from it; they
never touch storage, so the writes stay in one process and in input order.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType

from kernel.errors import ArtmatchError
from models.images import DecodedImage, configure_decoding, decode_image, make_thumbnail
from models.local_features import LocalFeatures, extract_local_features

__all__ = ["PhotoLimits", "PhotoPreparer", "Prepared", "Refused", "prepare_photo"]


@dataclass(frozen=True)
class PhotoLimits:
    """What a worker needs to know of the settings."""

    max_pixels: int
    max_bytes: int
    max_concurrent_decodes: int
    thumbnail_px: int
    #: Extract local features (verification is on).
    features: bool


@dataclass(frozen=True)
class Prepared:
    image: DecodedImage
    #: None where computing it failed: the write step computes it again, so that the photo
    #: fails there with the message it always had ("could not be stored").
    thumbnail: bytes | None
    features: LocalFeatures | None
    features_blob: bytes | None


@dataclass(frozen=True)
class Refused:
    """A photo that could not be decoded: ``message`` for the user, or ``trace`` (the
    traceback of an error no check foresaw) for the log."""

    message: str = ""
    trace: str | None = None


def prepare_photo(data: bytes, *, source: str, limits: PhotoLimits) -> Prepared | Refused:
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
    thumbnail = features = blob = None
    try:
        thumbnail = make_thumbnail(image.image, max_side=limits.thumbnail_px)
        if limits.features:
            features = extract_local_features(image.to_array())
            blob = features.to_bytes()
    except Exception:  # noqa: S110 - computed again, and reported, by the write step
        pass
    # The cached pixel array would double what goes back to the calling process.
    image.__dict__.pop("array", None)
    return Prepared(image, thumbnail, features, blob)


def _init_worker(max_bytes: int, max_concurrent: int) -> None:
    import cv2

    # One worker per core already: OpenCV's own threads would only fight over them.
    cv2.setNumThreads(1)
    configure_decoding(max_bytes=max_bytes, max_concurrent=max_concurrent)


def _context() -> multiprocessing.context.BaseContext:
    # Never fork: the calling process holds threads (ONNX Runtime, the web server's) and
    # open database connections. forkserver starts workers cheaply where it exists.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class PhotoPreparer:
    """Runs `prepare_photo` in ``workers`` processes, or in this one when ``workers`` <= 1.

    A worker that dies (a decoder crashing on one odd file) breaks the pool: the photos it
    held are tried again one at a time in a new pool, so only the culprit fails.
    """

    #: What a worker runs on each photo (a test swaps in one that crashes).
    task: Callable[..., Prepared | Refused] = staticmethod(prepare_photo)

    def __init__(self, *, workers: int, limits: PhotoLimits) -> None:
        # 0: every core but the one the calling process keeps busy with the CNN and the writes
        # (~60 ms a photo); on 2 cores a pool only adds its transfers (measured slower).
        self.workers = workers if workers > 0 else max(1, (os.cpu_count() or 1) - 1)
        if multiprocessing.current_process().daemon:
            # A daemonic process (a multiprocessing worker running jobs) may not start
            # children: prepare here instead of failing the ingest.
            self.workers = 1
        self.limits = limits
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_context(),
                initializer=_init_worker,
                initargs=(self.limits.max_bytes, self.limits.max_concurrent_decodes),
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
