"""Search filters cached per filter and catalogue version (`engine.search.filters`): a
repeated search fetches nothing, every catalogue change is seen by the next one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.search import search
from engine.search.filters import FilterCache
from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.enums import ObjectStatus
from kernel.schemas import StatusChange
from models.images import DecodedImage, decode_image
from storage.catalogue.browse import CatalogueQueries
from storage.index.filters import IdFilter
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object

STOLEN = [ObjectStatus.STOLEN]


@pytest.fixture
def catalogue(services: Services, tmp_path: Path) -> Services:
    csv_path = write_catalogue(tmp_path / "cat", n_objects=5)
    ingest_photos(services, iter_items(read_catalogue_csv(csv_path)))
    _report(services, "obj-1", ObjectStatus.STOLEN)
    return services


def _report(services: Services, object_id: str, status: ObjectStatus) -> None:
    services.catalogue.set_status(object_id, StatusChange(status=status, reference="POL-1"))


def _query(i: int) -> DecodedImage:
    return decode_image(jpeg_bytes(photographed(textured_object(i), seed=7)))


class _Spy:
    """Counts the calls of the catalogue's filter queries."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, services: Services) -> None:
        self.calls: dict[str, int] = {}
        for name in ("photo_ids_where", "count_objects_where"):
            real = getattr(services.catalogue, name)

            def counted(*args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
                self.calls[_name] = self.calls.get(_name, 0) + 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(services.catalogue, name, counted)


def test_a_repeated_filtered_search_scans_nothing_and_reuses_its_filter(
    catalogue: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch, catalogue)
    seen: list[object] = []
    real_search = catalogue.index.search

    def index_search(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs.get("allowed_ids"))
        return real_search(*args, **kwargs)

    monkeypatch.setattr(catalogue.index, "search", index_search)
    first = search(catalogue, _query(1), top_k=3, statuses=STOLEN)
    second = search(catalogue, _query(1), top_k=3, statuses=STOLEN)
    assert spy.calls == {"photo_ids_where": 1, "count_objects_where": 1}
    assert [h.object_id for h in first.hits] == [h.object_id for h in second.hits] == ["obj-1"]
    assert second.objects_searched == 1 and second.photos_searched == 1
    # One IdFilter, handed to the index as is (no ids array, no new selector per query).
    assert isinstance(seen[0], IdFilter) and all(f is seen[0] for f in seen)
    # The unfiltered count is cached too.
    search(catalogue, _query(1), top_k=3)
    search(catalogue, _query(1), top_k=3)
    assert spy.calls == {"photo_ids_where": 1, "count_objects_where": 2}


def test_a_status_change_is_seen_by_the_next_search(catalogue: Services) -> None:
    assert search(catalogue, _query(3), top_k=3, statuses=STOLEN).objects_searched == 1
    _report(catalogue, "obj-3", ObjectStatus.STOLEN)
    result = search(catalogue, _query(3), top_k=3, statuses=STOLEN)
    assert result.hits[0].object_id == "obj-3" and result.objects_searched == 2
    _report(catalogue, "obj-3", ObjectStatus.RECOVERED)
    result = search(catalogue, _query(3), top_k=3, statuses=STOLEN)
    assert "obj-3" not in {h.object_id for h in result.hits} and result.objects_searched == 1


def test_a_deleted_or_added_photo_is_seen_by_the_next_filtered_search(
    catalogue: Services, tmp_path: Path
) -> None:
    assert search(catalogue, _query(1), top_k=3, statuses=STOLEN).photos_searched == 1
    CatalogueQueries(catalogue.catalogue.engine).delete_object("obj-1")
    catalogue.refresh()
    result = search(catalogue, _query(1), top_k=3, statuses=STOLEN)
    assert result.hits == [] and result.photos_searched == 0 and result.objects_searched == 0
    csv_path = write_catalogue(tmp_path / "again", n_objects=2)
    ingest_photos(catalogue, iter_items(read_catalogue_csv(csv_path)))
    _report(catalogue, "obj-1", ObjectStatus.STOLEN)
    result = search(catalogue, _query(1), top_k=3, statuses=STOLEN)
    assert [h.object_id for h in result.hits] == ["obj-1"] and result.photos_searched == 1


def test_filters_are_keyed_by_their_values_and_bounded(catalogue: Services) -> None:
    cache = FilterCache(size=2)
    lost = [ObjectStatus.STOLEN, ObjectStatus.MISSING]
    a = cache.scope(catalogue.catalogue, statuses=lost)
    assert cache.scope(catalogue.catalogue, statuses=lost[::-1]) is a  # order does not matter
    cache.scope(catalogue.catalogue, statuses=[ObjectStatus.STOLEN], institutions=["x"])
    cache.scope(catalogue.catalogue)
    assert len(cache) == 2 and cache.fetches == 3
    assert cache.scope(catalogue.catalogue, statuses=lost) is not a  # evicted: fetched again
    assert cache.fetches == 4


def test_cached_filtered_lookups_equal_brute_force(services: Services) -> None:
    """The old path's answer (every allowed id, searched exhaustively) and the cached
    filter's are the same, on the FAISS index."""
    rng = np.random.default_rng(0)
    dim = services.embedder.dim
    ids = np.arange(1, 3001, dtype=np.int64)
    vectors = rng.normal(size=(len(ids), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    services.index.add(ids, vectors)
    allowed = np.sort(rng.choice(ids, size=700, replace=False))
    queries = vectors[rng.choice(len(ids), size=20)] + 0.1
    scores, found = services.index.search(queries, 10, allowed_ids=IdFilter(allowed))
    keep = np.isin(ids, allowed)
    sims = queries @ vectors[keep].T
    expected = ids[keep][np.argsort(-sims, axis=1)[:, :10]]
    assert np.array_equal(found, expected)
    assert np.allclose(scores, np.sort(sims, axis=1)[:, ::-1][:, :10], atol=1e-5)
