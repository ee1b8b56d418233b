"""Index snapshots in the blob store: round trip, pointer written last, pruning, damage
detection, and `open_index` preferring a fresh snapshot to a rebuild."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.services import build_services, snapshots_enabled
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.errors import IndexNotReady
from kernel.settings import EmbedderSettings, IndexSettings, Settings, StorageSettings
from models.embedders import FakeEmbedder
from storage.blobs import MemoryBlobStore
from storage.index.base import IndexMeta, fingerprint_ids
from storage.index.faiss_flat import FaissVectorIndex
from storage.index.snapshots import (
    latest_snapshot,
    load_snapshot,
    save_snapshot,
    snapshot_prefix,
)
from tests.utils.catalogue import write_catalogue
from tests.utils.servers import find_s3, s3_bucket

DIM = 16


def _index(tmp_path: Path, n: int, *, start: int = 1) -> FaissVectorIndex:
    index = FaissVectorIndex(tmp_path / "idx", IndexMeta(model="m", model_version="v1", dim=DIM))
    rng = np.random.default_rng(n)
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index.add(np.arange(start, start + n, dtype=np.int64), vecs)
    return index


class RecordingStore(MemoryBlobStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []

    def put(self, key, data, *, content_type="application/octet-stream"):  # type: ignore[no-untyped-def]
        self.puts.append(key)
        super().put(key, data, content_type=content_type)


def test_round_trip_and_pointer_written_last(tmp_path: Path) -> None:
    blobs = RecordingStore()
    index = _index(tmp_path, 20)
    info = save_snapshot(blobs, index)
    assert blobs.puts == [info.key, snapshot_prefix("m", "v1") + "latest.json"]
    pointer = json.loads(blobs.get(blobs.puts[-1]))
    assert pointer["model"] == "m" and pointer["model_version"] == "v1"
    assert pointer["ntotal"] == 20 and pointer["fingerprint"] == fingerprint_ids(index.ids())

    loaded = load_snapshot(blobs, model="m", model_version="v1", directory=tmp_path / "other")
    assert loaded.meta.fingerprint == info.fingerprint and loaded.meta.version == index.meta.version
    queries = np.eye(DIM, dtype=np.float32)[:3]
    for a, b in zip(index.search(queries, 5), loaded.search(queries, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    loaded.save()  # saves where this replica keeps its index
    assert FaissVectorIndex.load(tmp_path / "other", model="m", model_version="v1").size == 20


def test_other_model_has_no_snapshot(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    save_snapshot(blobs, _index(tmp_path, 3))
    with pytest.raises(IndexNotReady, match="no index snapshot"):
        load_snapshot(blobs, model="m", model_version="v2", directory=tmp_path)


def test_keeps_the_last_two(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    keys = [
        save_snapshot(blobs, _index(tmp_path, n), now=t0 + dt.timedelta(minutes=n)).key
        for n in (3, 4, 5, 6)
    ]
    left = sorted(k for k in blobs.keys("index/") if k.endswith(".faiss"))
    assert left == keys[-2:]
    assert latest_snapshot(blobs, "m", "v1").key == keys[-1]  # type: ignore[union-attr]
    assert load_snapshot(blobs, model="m", model_version="v1", directory=tmp_path).size == 6


def test_damaged_or_missing_snapshot_is_not_loaded(tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    info = save_snapshot(blobs, _index(tmp_path, 4))
    blobs.blobs[info.key] = blobs.blobs[info.key][:-7]
    with pytest.raises(IndexNotReady, match="checksum"):
        load_snapshot(blobs, model="m", model_version="v1", directory=tmp_path)
    blobs.delete(info.key)
    with pytest.raises(IndexNotReady, match="gone"):
        load_snapshot(blobs, model="m", model_version="v1", directory=tmp_path)
    blobs.put(snapshot_prefix("m", "v1") + "latest.json", b"{not json")
    with pytest.raises(IndexNotReady, match="unreadable"):
        load_snapshot(blobs, model="m", model_version="v1", directory=tmp_path)


def test_snapshots_default_to_shared_blob_stores() -> None:
    assert not snapshots_enabled(Settings())
    assert snapshots_enabled(Settings(storage=StorageSettings(backend="s3")))
    assert snapshots_enabled(Settings(index=IndexSettings(snapshots=True)))
    assert not snapshots_enabled(
        Settings(storage=StorageSettings(backend="s3"), index=IndexSettings(snapshots=False))
    )


def _replica(tmp_path: Path, name: str) -> Settings:
    # Two replicas: their own index directories, one catalogue and one blob store.
    return Settings(
        home=tmp_path / name,
        storage=StorageSettings(
            path=tmp_path / "blobs", database_url=f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        ),
        embedder=EmbedderSettings(name="fake", batch_size=4),
        index=IndexSettings(snapshots=True),
    )


@pytest.fixture
def first_replica(tmp_path: Path) -> Iterator[Settings]:
    settings = _replica(tmp_path, "a")
    services = build_services(settings, embedder=FakeEmbedder())
    csv_path = write_catalogue(tmp_path / "cat", n_objects=5)
    ingest_photos(services, iter_items(read_catalogue_csv(csv_path)))
    services.close()  # saves the snapshot
    yield settings


def test_second_replica_loads_the_snapshot(tmp_path: Path, first_replica: Settings) -> None:
    services = build_services(_replica(tmp_path, "b"), embedder=FakeEmbedder())
    try:
        assert not services.index_rebuilt and services.index.size == 5
    finally:
        services.close()
    # Loaded once, it is kept locally as well.
    assert (tmp_path / "b" / "index").is_dir()


def test_stale_snapshot_is_caught_up_and_replaced(tmp_path: Path, first_replica: Settings) -> None:
    services = build_services(_replica(tmp_path, "c"), embedder=FakeEmbedder())
    csv_path = write_catalogue(tmp_path / "more", n_objects=7)
    ingest_photos(services, iter_items(read_catalogue_csv(csv_path)))
    # Crash: no close, so the snapshot still shows 5 photos while the catalogue has 7.
    services.catalogue.close()
    replica = build_services(_replica(tmp_path, "d"), embedder=FakeEmbedder())
    try:
        # Caught up from the catalogue's vectors it lacks, not rebuilt from all of them.
        assert not replica.index_rebuilt and replica.index.size == 7
    finally:
        replica.close()
    pointer = latest_snapshot(replica.blobs, "fake", "1")
    assert pointer is not None and pointer.ntotal == 7


@pytest.mark.integration
def test_round_trip_on_s3(tmp_path: Path) -> None:
    from storage.s3 import S3BlobStore

    server = find_s3()
    with s3_bucket(server) as bucket:
        blobs = S3BlobStore(
            endpoint=server.endpoint,
            bucket=bucket,
            access_key=server.access_key,
            secret_key=server.secret_key,
            secure=False,
        )
        for n in (5, 6, 7):
            info = save_snapshot(blobs, _index(tmp_path, n))
        loaded = load_snapshot(blobs, model="m", model_version="v1", directory=tmp_path)
        assert loaded.size == 7 and loaded.meta.fingerprint == info.fingerprint
        assert len([k for k in blobs.keys("index/") if k.endswith(".faiss")]) == 2
