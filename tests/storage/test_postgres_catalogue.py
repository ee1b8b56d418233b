"""The catalogue repository on both databases it supports: the embedded SQLite file and a real
PostgreSQL (scripts/start-postgres.sh; integration, skipped outside CI without a server).

Each PostgreSQL test runs in its own schema, migrated with `artmatch db upgrade`'s code path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kernel.enums import ObjectStatus
from kernel.errors import ConfigError, Conflict, InvalidInput, NotFound
from kernel.schemas import ObjectCreate, StatusChange
from storage.catalogue import Catalogue, NewPhoto, create_catalogue
from storage.migrate import upgrade
from tests.utils.servers import find_postgres, postgres_schema

MODEL, VERSION = "fake", "1"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def cat(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalogue]:
    if request.param == "sqlite":
        cat = create_catalogue(f"sqlite:///{tmp_path / 'catalogue.sqlite3'}")
        yield cat
        cat.close()
        return
    with postgres_schema(find_postgres()) as url:
        with pytest.raises(ConfigError):
            create_catalogue(url)
        raw = create_catalogue(url, check_schema=False)
        upgrade(raw.engine)
        raw.close()
        cat = create_catalogue(url)
        yield cat
        cat.close()


def _photo(n: int) -> NewPhoto:
    sha = f"{n:064x}"
    return NewPhoto(
        sha256=sha,
        blob_key=f"photos/{sha[:2]}/{sha}",
        thumbnail_key=f"thumbnails/{sha[:2]}/{sha}.jpg",
        width=640,
        height=480,
        format="JPEG",
        view="front",
        original_name=f"p{n}.jpg",
    )


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _add(cat: Catalogue, n: int, object_id: str, institution: str = "Museum A") -> int:
    record = ObjectCreate(object_id=object_id, institution=institution, title=f"T {object_id}")
    ref = cat.add_photo(
        record=record, photo=_photo(n), model=MODEL, model_version=VERSION, vector=_vec(n)
    )
    return ref.photo_id


def test_upsert_creates_then_fills_in_and_refuses_another_institution(cat: Catalogue) -> None:
    obj, created = cat.upsert_object(
        ObjectCreate(object_id="A-1", institution="Museum A", title="Vase", maker=None)
    )
    assert created and obj.title == "Vase" and obj.status is ObjectStatus.IN_COLLECTION
    obj, created = cat.upsert_object(
        ObjectCreate(object_id="A-1", institution="Museum A", maker="Potter")
    )
    assert not created and obj.title == "Vase" and obj.maker == "Potter"
    with pytest.raises(Conflict, match="already belongs to 'Museum A'"):
        cat.upsert_object(ObjectCreate(object_id="A-1", institution="Museum B"))
    assert cat.count_objects() == 1
    assert cat.get_object("A-1").institution == "Museum A"
    with pytest.raises(NotFound):
        cat.get_object("nope")


def test_photos_vectors_and_duplicates(cat: Catalogue) -> None:
    p1 = _add(cat, 1, "A-1")
    p2 = _add(cat, 2, "A-1")
    p3 = _add(cat, 3, "B-1", institution="Museum B")
    with pytest.raises(Conflict, match="already in the catalogue"):
        _add(cat, 1, "A-2")
    # The failed add left nothing behind: not even its new object.
    with pytest.raises(NotFound):
        cat.get_object("A-2")
    assert cat.get_object("A-1").photo_count == 2
    assert cat.photo_by_sha(_photo(2).sha256).photo_id == p2  # type: ignore[union-attr]
    assert cat.photo_by_sha("0" * 63 + "f") is None
    assert [r.photo_id for r in cat.photos_of("A-1")] == [p1, p2]
    refs = cat.photo_refs([p3, p1, 999_999])
    assert set(refs) == {p1, p3} and refs[p3].institution == "Museum B"

    ids, vectors = cat.vectors(MODEL, VERSION)
    assert ids.tolist() == [p1, p2, p3] and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[2], _vec(3))
    before = cat.vector_fingerprint(MODEL, VERSION)
    assert cat.vectors("other", "1")[0].size == 0

    missing = cat.photos_without_vector("other", "1")
    assert sorted(r.photo_id for r in missing) == [p1, p2, p3]
    cat.store_vectors(
        model="other", model_version="1", photo_ids=[p1, p3], vectors=np.stack([_vec(7), _vec(8)])
    )
    assert [r.photo_id for r in cat.photos_without_vector("other", "1")] == [p2]
    assert cat.vector_fingerprint(MODEL, VERSION) == before
    with pytest.raises(InvalidInput):
        cat.store_vectors(
            model="other",
            model_version="1",
            photo_ids=[p2],
            vectors=np.full((1, 8), np.nan, np.float32),
        )


def test_status_changes_history_and_filters(cat: Catalogue) -> None:
    a = _add(cat, 1, "A-1")
    b = _add(cat, 2, "B-1", institution="Museum B")
    loss = dt.date(2025, 3, 1)
    obj = cat.set_status(
        "A-1",
        StatusChange(status=ObjectStatus.STOLEN, date=loss, reference="POL-1", note="night"),
    )
    assert obj.status is ObjectStatus.STOLEN and obj.loss_date == loss
    assert obj.loss_reference == "POL-1"
    cat.set_status("A-1", StatusChange(status=ObjectStatus.RECOVERED, note="found"))
    history = cat.status_history("A-1")
    assert [h.status for h in history] == [ObjectStatus.STOLEN, ObjectStatus.RECOVERED]
    assert history[0].reference == "POL-1" and history[1].note == "found"
    cat.set_status("B-1", StatusChange(status=ObjectStatus.MISSING))

    assert cat.photo_ids_where().tolist() == sorted([a, b])
    assert cat.photo_ids_where(statuses=[ObjectStatus.MISSING]).tolist() == [b]
    assert cat.photo_ids_where(statuses=[ObjectStatus.STOLEN]).tolist() == []
    assert cat.photo_ids_where(institutions=["Museum A"]).tolist() == [a]
    both = cat.photo_ids_where(
        statuses=[ObjectStatus.RECOVERED, ObjectStatus.MISSING], institutions=["Museum B"]
    )
    assert both.tolist() == [b]
    assert cat.count_objects_where(statuses=[ObjectStatus.MISSING, ObjectStatus.RECOVERED]) == 2
    assert cat.count_objects_where(institutions=["Museum C"]) == 0
    with pytest.raises(NotFound):
        cat.set_status("nope", StatusChange(status=ObjectStatus.STOLEN))


def test_status_changes_and_vectors_move_the_filter_version(cat: Catalogue) -> None:
    """Cached search filters (`engine.search.filters`) are valid while this stays put."""
    photos, objects = cat.filter_version()
    _add(cat, 1, "A-1")
    assert cat.filter_version()[0] > photos  # a vector: the triggers' counter
    photos, objects = cat.filter_version()
    cat.set_status("A-1", StatusChange(status=ObjectStatus.STOLEN))  # makes the row
    cat.set_status("A-1", StatusChange(status=ObjectStatus.RECOVERED))
    assert cat.filter_version() == (photos, objects + 2)
    cat.upsert_object(ObjectCreate(object_id="A-1", institution="Museum A", title="Renamed"))
    assert cat.filter_version() == (photos, objects + 2)  # no status change: filters stand


def _check(
    listing_id: str,
    *,
    source: str = "manifest:a.csv",
    sha: str | None = "a" * 64,
    error: str | None = None,
    score: float = 0.7,
) -> dict[str, object]:
    return {
        "source": source,
        "listing_id": listing_id,
        "image": f"{listing_id}.jpg",
        "image_sha256": None if error else sha,
        "title": "Old vase",
        "is_hit": error is None,
        "error": error,
        "best_object_id": "A-1" if error is None else None,
        "best_similarity": score if error is None else None,
        "matches_json": '[{"object_id": "A-1", "score": 0.7}]' if error is None else "[]",
        "model_version": "fake/1",
    }


def test_listing_checks(cat: Catalogue) -> None:
    src = "manifest:a.csv"
    cat.record_listing_check(_check("L1"))
    cat.record_listing_check(_check("L2", error="not an image"))
    cat.record_listing_check(_check("L1", score=0.1))  # replaces the check of the same photo
    cat.record_listing_check(_check("L1", source="venue:other", sha="b" * 64))
    # Errors are checked again next time; clean checks are skipped, per source and photo.
    wanted = [(src, "L1"), (src, "L2"), (src, "L3")]
    assert cat.checked_listing_photos(wanted) == {(src, "L1"): {"a" * 64}}
    keys = [(src, "L2", None), (src, "L1", "a" * 64), (src, "L1", "b" * 64)]
    rows = cat.listing_checks(keys)
    assert set(rows) == set(keys[:2])
    assert rows[keys[1]]["best_similarity"] == pytest.approx(0.1)
    assert rows[keys[1]]["matches"] == [{"object_id": "A-1", "score": 0.7}]
    assert rows[keys[1]]["checked_at"] is not None
    assert rows[keys[0]]["error"] == "not an image"
    cat.record_listing_check(_check("L2"))  # the photo is readable now: the error goes
    assert cat.checked_listing_photos([(src, "L2")]) == {(src, "L2"): {"a" * 64}}
    assert cat.listing_checks([(src, "L2", None)]) == {}
    many = [(src, f"X{i}") for i in range(1200)]  # more than one IN (...) chunk
    assert cat.checked_listing_photos(many) == {}
