"""Photo preparation (decode, thumbnail, local features) in this process or a worker pool:
the same outcomes, in the same order, either way."""

from __future__ import annotations

import io
import os
import platform

import numpy as np
import pytest
from PIL import Image

from ingest.photos import Outcome, PhotoItem, blob_keys, ingest_photos
from ingest.prepare import PhotoLimits, PhotoPreparer, Prepared, Refused, prepare_photo
from kernel.schemas import ObjectCreate
from models.embedders.base import FakeEmbedder as FakeEmbedderForTests
from models.images import decode_image
from models.local_features import LocalFeatures
from tests.utils.images import jpeg_bytes, png_bytes, textured_object
from tests.utils.memory import mapped_with_a_large_buffer

LIMITS = PhotoLimits(
    max_pixels=90_000_000,
    max_bytes=384 * 2**20,
    max_concurrent_decodes=2,
    thumbnail_px=64,
    features=True,
)


def _items(count: int) -> list[PhotoItem]:
    """Photos of several shapes, with a broken file and a duplicate among them."""
    items = []
    for n in range(count):
        data = png_bytes(textured_object(n, size=(200 + 40 * (n % 3), 260)))
        if n == 3:
            data = b"not an image"
        if n == 6:
            data = png_bytes(textured_object(1, size=(240, 260)))  # the bytes of photo 1
        record = ObjectCreate(object_id=f"obj-{n}", institution="Museum A")
        items.append(PhotoItem(record=record, source=f"p{n}.png", load=lambda d=data: d))
    return items


def test_a_prepared_photo_carries_its_thumbnail_and_local_features() -> None:
    prepared = prepare_photo(jpeg_bytes(textured_object(1)), source="a.jpg", limits=LIMITS)
    assert isinstance(prepared, Prepared)
    assert max(Image.open(io.BytesIO(prepared.thumbnail or b"")).size) == 64
    assert isinstance(prepared.features, LocalFeatures) and len(prepared.features.keypoints)
    assert LocalFeatures.from_bytes(prepared.features_blob or b"").keypoints.shape == (
        prepared.features.keypoints.shape
    )
    # Without an embedder the picture goes back for the CNN, without its pixel array.
    assert prepared.vector is None and prepared.image is not None
    assert "array" not in prepared.image.__dict__


def test_a_photo_embedded_in_the_worker_goes_back_without_its_picture() -> None:
    embedder = FakeEmbedderForTests()
    data = jpeg_bytes(textured_object(1))
    prepared = prepare_photo(data, source="a.jpg", limits=LIMITS, embedder=embedder)
    assert isinstance(prepared, Prepared) and prepared.image is None
    assert prepared.vector is not None
    decoded = decode_image(data, source="a.jpg", max_pixels=LIMITS.max_pixels)
    np.testing.assert_array_equal(prepared.vector, embedder.embed([decoded.image])[0])
    assert prepared.original_size == decoded.size and prepared.sha256 == decoded.sha256


def test_a_photo_whose_vector_failed_keeps_its_picture_for_the_calling_process() -> None:
    class Broken(FakeEmbedderForTests):
        def embed(self, images):  # type: ignore[no-untyped-def]
            raise RuntimeError("model cannot take it")

    prepared = prepare_photo(
        jpeg_bytes(textured_object(1)), source="a.jpg", limits=LIMITS, embedder=Broken()
    )
    assert isinstance(prepared, Prepared) and prepared.vector is None
    assert prepared.image is not None


def test_no_local_features_when_verification_is_off() -> None:
    limits = PhotoLimits(**{**LIMITS.__dict__, "features": False})
    prepared = prepare_photo(jpeg_bytes(textured_object(1)), source="a.jpg", limits=limits)
    assert isinstance(prepared, Prepared) and prepared.features is None


def test_a_file_that_is_not_an_image_is_refused_with_a_message() -> None:
    refused = prepare_photo(b"GIF89a nonsense", source="x.gif", limits=LIMITS)
    assert isinstance(refused, Refused) and refused.trace is None
    assert refused.message.startswith("x.gif")


def test_one_worker_prepares_in_this_process() -> None:
    with PhotoPreparer(workers=1, limits=LIMITS) as preparer:
        future = preparer.submit(jpeg_bytes(textured_object(2)), source="b.jpg")
        assert future.done() and preparer._pool is None
        assert isinstance(future.result(), Prepared)


def test_outcomes_keep_input_order_across_batches(services) -> None:
    outcomes = ingest_photos(services, _items(9))
    assert [o.source for o in outcomes] == [
        "p3.png",  # refused when its batch (p0-p3) is read, before the batch is stored
        "p0.png",
        "p1.png",
        "p2.png",
        "p6.png",  # the same bytes as p1, in the next batch
        "p4.png",
        "p5.png",
        "p7.png",
        "p8.png",
    ]
    kinds = {o.source: o.outcome for o in outcomes}
    assert kinds["p3.png"] is Outcome.ERROR and kinds["p6.png"] is Outcome.DUPLICATE
    assert services.index.size == 7


@pytest.mark.integration
def test_a_worker_pool_stores_what_this_process_would(services, tmp_path) -> None:
    from engine.services import build_services
    from kernel.settings import IngestSettings

    settings = services.settings
    pool_settings = settings.model_copy(
        update={"home": tmp_path / "pool", "ingest": IngestSettings(workers=2)}
    )
    inline = ingest_photos(services, _items(9))
    pooled_services = build_services(pool_settings, embedder=services.embedder)
    try:
        pooled = ingest_photos(pooled_services, _items(9))
        assert [(o.source, o.outcome, o.message) for o in pooled] == [
            (o.source, o.outcome, o.message) for o in inline
        ]
        assert pooled_services.index.size == services.index.size == 7
        # The workers embedded (the fake embedder travels): the same vectors.
        emb = services.embedder
        pooled_ids, pooled_vectors = pooled_services.catalogue.vectors(emb.name, emb.version)
        inline_ids, inline_vectors = services.catalogue.vectors(emb.name, emb.version)
        np.testing.assert_array_equal(pooled_vectors, inline_vectors)
        # Thumbnails made in the workers are the ones this process makes.
        for item in _items(9):
            prepared = prepare_photo(item.load(), source=item.source, limits=LIMITS)
            if isinstance(prepared, Prepared):
                key = blob_keys(prepared.sha256)[1]
                assert pooled_services.blobs.get(key) == services.blobs.get(key)
    finally:
        pooled_services.close()


def crash_on_request(data: bytes, *, source: str, limits: PhotoLimits) -> Prepared | Refused:
    """`prepare_photo`, except that the worker dies on a file reading "CRASH" (a decoder
    crashing on an odd file)."""
    if data == b"CRASH":
        os._exit(1)
    return prepare_photo(data, source=source, limits=limits)


class _Crashing(PhotoPreparer):
    task = staticmethod(crash_on_request)


@pytest.mark.integration
def test_a_worker_that_dies_sinks_only_its_photo() -> None:
    with _Crashing(workers=2, limits=LIMITS) as preparer:
        good = jpeg_bytes(textured_object(3))
        futures = [
            (preparer.submit(good, source="a.jpg"), good, "a.jpg"),
            (preparer.submit(b"CRASH", source="crash.jpg"), b"CRASH", "crash.jpg"),
            (preparer.submit(good, source="b.jpg"), good, "b.jpg"),
        ]
        results = [preparer.result(f, d, source=s) for f, d, s in futures]
    assert isinstance(results[0], Prepared) and isinstance(results[2], Prepared)
    assert isinstance(results[1], Refused)


_KILLED_CALLER = """
import multiprocessing.forkserver as fs, sys, time
from ingest.prepare import PhotoPreparer
from tests.ingest.test_prepare import LIMITS
from tests.utils.images import jpeg_bytes, textured_object

preparer = PhotoPreparer(workers=2, limits=LIMITS)
data = jpeg_bytes(textured_object(1))
for f in [preparer.submit(data, source="a.jpg") for _ in range(4)]:
    f.result()
pids = [*preparer._pool._processes, fs._forkserver._forkserver_pid]
print(*pids, flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_a_killed_caller_takes_its_workers_and_forkserver_with_it() -> None:
    # An import killed with SIGKILL (or by the OOM killer) had left its pool's workers and
    # the forkserver running for good.
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-c", _KILLED_CALLER], cwd=root, stdout=subprocess.PIPE, text=True
    ) as caller:
        try:
            assert caller.stdout is not None
            pids = [int(p) for p in caller.stdout.readline().split()]
            assert len(pids) == 3 and all(_running(p) for p in pids)
        finally:
            caller.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 20
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _running(p)]
    for pid in left:  # do not leave them to the next test run either
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after their caller was killed: {left}"


def report_mapped_bytes(data: bytes, *, source: str, limits: PhotoLimits) -> Refused:
    """What the worker's allocator maps for a 16 MB buffer, as a refusal's message."""
    return Refused(str(mapped_with_a_large_buffer()))


class _Probing(PhotoPreparer):
    task = staticmethod(report_mapped_bytes)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_pool_workers_keep_freed_memory_as_the_settings_say() -> None:
    mapped = {}
    for keep in (256, 0):
        limits = PhotoLimits(**{**LIMITS.__dict__, "keep_freed_mb": keep})
        with _Probing(workers=2, limits=limits) as preparer:
            result = preparer.result(preparer.submit(b"", source="x"), b"", source="x")
        assert isinstance(result, Refused)
        mapped[keep] = int(result.message)
    # Kept: served from the heap, whose freed pages SIFT's next pyramid reuses.
    assert mapped[256] < 16 * 2**20 <= mapped[0]


def test_a_daemonic_process_prepares_in_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert PhotoPreparer(workers=2, limits=LIMITS).workers == 1


def test_a_pool_starts_only_for_more_than_one_batch(services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import ingest.photos

    asked: list[int] = []

    class Recording(PhotoPreparer):
        def __init__(self, *, workers: int, limits: PhotoLimits, embedder=None) -> None:  # type: ignore[no-untyped-def]
            asked.append(workers)
            super().__init__(workers=1, limits=limits, embedder=embedder)

    monkeypatch.setattr(ingest.photos, "PhotoPreparer", Recording)
    services.settings.ingest.workers = 2  # batch size 4 (tests/conftest.py)
    ingest_photos(services, _items(3))
    ingest_photos(services, _items(9)[3:])
    assert asked == [1, 2]


def _refuse_to_start() -> FakeEmbedderForTests:
    raise RuntimeError("no memory for a session")


class _StaysHome(FakeEmbedderForTests):
    """Portable on paper, but it cannot start in a worker (its unpickling fails there)."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return _refuse_to_start, ()


@pytest.mark.integration
def test_an_embedder_that_cannot_start_in_a_worker_is_run_by_the_caller(services, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.services import build_services
    from kernel.settings import IngestSettings

    pool_settings = services.settings.model_copy(
        update={"home": tmp_path / "pool", "ingest": IngestSettings(workers=2)}
    )
    inline = ingest_photos(services, _items(9))
    pooled_services = build_services(pool_settings, embedder=_StaysHome())
    try:
        pooled = ingest_photos(pooled_services, _items(9))
        assert [(o.source, o.outcome) for o in pooled] == [(o.source, o.outcome) for o in inline]
        emb = services.embedder
        _, pooled_vectors = pooled_services.catalogue.vectors(emb.name, emb.version)
        _, inline_vectors = services.catalogue.vectors(emb.name, emb.version)
        np.testing.assert_array_equal(pooled_vectors, inline_vectors)
    finally:
        pooled_services.close()
