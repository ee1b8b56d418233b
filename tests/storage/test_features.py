"""Local features outside the database: blobs in the blob store (local and memory), rows
holding only the reference, rows from before migration 0011 still read, and moved."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.errors import ConfigError, NotFound
from kernel.schemas import ObjectCreate
from models.local_features import FEATURES_KEY, LocalFeatures
from storage.blobs import BlobStore, LocalBlobStore, MemoryBlobStore
from storage.catalogue import Catalogue, create_catalogue
from storage.catalogue.index_state import IndexStates
from storage.catalogue.orm import LocalFeatureSet
from storage.catalogue.repository import NewPhoto
from storage.features import FEATURES_PREFIX, FeatureStore, feature_key


def _features(seed: int, n: int = 50) -> LocalFeatures:
    rng = np.random.default_rng(seed)
    return LocalFeatures(
        keypoints=rng.uniform(0, 3000, (n, 2)).astype(np.float32),
        descriptors=rng.integers(0, 256, (n, 128)).astype(np.uint8),
        width=3000,
        height=2000,
        method="rootsift",
        scale=4.6875,
    )


def _v1_bytes(f: LocalFeatures) -> bytes:
    """The blob format before version 2 (``.npz``), as catalogues written then hold it."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        version=np.int32(1),
        keypoints=f.keypoints,
        descriptors=f.descriptors,
        meta=np.array([f.width, f.height], dtype=np.int64),
        scale=np.float64(f.scale),
        method=np.array(f.method),
    )
    return buf.getvalue()


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return MemoryBlobStore() if request.param == "memory" else LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def catalogue(tmp_path: Path, migrated_catalogue: Path, store: BlobStore) -> Iterator[Catalogue]:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(migrated_catalogue.read_bytes())
    cat = create_catalogue(f"sqlite:///{path}", features=FeatureStore(store))
    yield cat
    cat.close()


def _add(cat: Catalogue, n: int, data: bytes, *, object_id: str | None = None) -> int:
    sha = f"{n:064x}"
    ref = cat.add_photo(
        record=ObjectCreate(object_id=object_id or f"obj-{n}", institution="M"),
        photo=NewPhoto(
            sha256=sha,
            blob_key=f"photos/{sha}",
            thumbnail_key=f"t/{sha}",
            width=1,
            height=1,
            format="jpeg",
        ),
        model="fake",
        model_version="1",
        vector=np.ones(4, dtype=np.float32),
        local_features=(FEATURES_KEY, data),
    )
    return ref.photo_id


def test_blob_format_round_trips_exactly_and_reads_version_1() -> None:
    f = _features(1)
    for blob in (f.to_bytes(), _v1_bytes(f)):
        back = LocalFeatures.from_bytes(blob)
        assert np.array_equal(back.keypoints, f.keypoints)
        assert np.array_equal(back.descriptors, f.descriptors)
        assert back.descriptors.dtype == np.uint8
        assert (back.width, back.height, back.scale, back.method) == (
            3000,
            2000,
            4.6875,
            "rootsift",
        )
    assert f.to_bytes()[:4] == b"AMLF"


def test_feature_store_round_trip(store: BlobStore) -> None:
    features = FeatureStore(store)
    keys = {
        i: features.put(sha256=f"{i:064x}", method=FEATURES_KEY, data=bytes([i]) * 10)
        for i in range(20)
    }
    assert keys[3] == feature_key(sha256=f"{3:064x}", method=FEATURES_KEY)
    assert keys[3].startswith(FEATURES_PREFIX) and "rootsift-640-1000" in keys[3]
    store.delete(keys[5])
    got = features.get_many(keys)
    assert set(got) == set(range(20)) - {5}  # a lost blob is left out, not an error
    assert got[7] == bytes([7]) * 10


def test_ingested_row_holds_only_the_reference(catalogue: Catalogue, store: BlobStore) -> None:
    blobs = {_add(catalogue, i, _features(i).to_bytes()): _features(i).to_bytes() for i in range(5)}
    with Session(catalogue.engine) as session:
        rows = session.scalars(select(LocalFeatureSet)).all()
    assert len(rows) == 5
    for row in rows:
        assert row.data is None and row.blob_key and store.exists(row.blob_key)
        assert row.size == len(blobs[row.photo_id])
    assert catalogue.local_features(blobs, FEATURES_KEY) == blobs
    batches = list(catalogue.iter_local_features(FEATURES_KEY, batch=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert dict(p for b in batches for p in b) == blobs


def test_rows_from_before_0011_are_read_and_moved(catalogue: Catalogue, store: BlobStore) -> None:
    features, catalogue.features = catalogue.features, None
    old = {_add(catalogue, i, _v1_bytes(_features(i))): _features(i) for i in range(3)}
    catalogue.attach_features(features)
    new_id = _add(catalogue, 9, _features(9).to_bytes())
    assert catalogue.features_in_rows() == 3

    read = catalogue.local_features([*old, new_id], FEATURES_KEY)
    assert set(read) == {*old, new_id}
    for pid, f in old.items():
        assert np.array_equal(LocalFeatures.from_bytes(read[pid]).descriptors, f.descriptors)

    states = IndexStates(catalogue.engine)
    ids_before = catalogue.local_feature_ids(FEATURES_KEY)
    steps: list[int] = []
    assert catalogue.move_features_to_blobs(batch=2, progress=steps.append) == 3
    assert steps == [2, 1] and catalogue.features_in_rows() == 0
    assert catalogue.move_features_to_blobs() == 0  # idempotent
    assert catalogue.local_feature_ids(FEATURES_KEY) == ids_before
    assert states.version() > 0
    assert catalogue.local_features([*old, new_id], FEATURES_KEY) == read
    assert len(list(store.keys(FEATURES_PREFIX))) == 4


def test_a_referenced_blob_without_a_store_is_a_clear_error(catalogue: Catalogue) -> None:
    pid = _add(catalogue, 1, b"x")
    catalogue.attach_features(None)
    with pytest.raises(ConfigError, match="blob store"):
        catalogue.local_features([pid], FEATURES_KEY)
    with pytest.raises(ConfigError):
        catalogue.move_features_to_blobs()


def test_features_of_an_unknown_photo_are_refused(catalogue: Catalogue, store: BlobStore) -> None:
    with pytest.raises(NotFound):
        catalogue.store_local_features(12345, FEATURES_KEY, b"x")
    assert list(store.keys(FEATURES_PREFIX)) == []


def test_adding_a_photo_takes_a_fixed_handful_of_statements(catalogue: Catalogue) -> None:
    # An import runs add_photo once a photo: the statements it sends are its cost (SQLite
    # ~0.5 ms of CPU each, a round trip each on PostgreSQL). It used to send 9 for a new
    # object: also the object's photo count and the object selected again, which
    # upsert_object needs and add_photo does not.
    from sqlalchemy import event

    _add(catalogue, 1, _features(1).to_bytes())
    sent: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        sent.append(statement.split(None, 1)[0].upper())

    def statements(add: Callable[[], int]) -> tuple[int, list[str]]:
        sent.clear()
        event.listen(catalogue.engine, "before_cursor_execute", count)
        try:
            return add(), list(sent)
        finally:
            event.remove(catalogue.engine, "before_cursor_execute", count)

    # A new object: select its institution, the object, the photo by content; insert the
    # object, the photo, its vector and its features' reference.
    photo_id, new = statements(lambda: _add(catalogue, 2, _features(2).to_bytes()))
    assert sorted(new) == ["INSERT"] * 4 + ["SELECT"] * 3
    # Another photo of an object already there: no insert of the object.
    ref, more = statements(lambda: _add(catalogue, 3, _features(3).to_bytes(), object_id="obj-2"))
    assert sorted(more) == ["INSERT"] * 3 + ["SELECT"] * 3
    assert [p.photo_id for p in catalogue.photos_of("obj-2")] == [photo_id, ref]
    assert catalogue.photos_of("obj-2")[0].institution == "M"
