from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.search import search
from engine.services import build_services, open_index
from ingest.catalogue_csv import RowError, iter_items, read_catalogue_csv
from ingest.photos import Outcome, ingest_photos
from kernel.enums import ObjectStatus
from kernel.errors import InvalidInput
from kernel.schemas import StatusChange
from models.embedders import FakeEmbedder
from models.images import decode_image
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object


def _import(services, csv_path: Path):
    return ingest_photos(services, iter_items(read_catalogue_csv(csv_path)))


def test_import_stores_photos_thumbnails_vectors(services, tmp_path: Path) -> None:
    csv_path = write_catalogue(tmp_path / "cat", n_objects=3, photos_per_object=2)
    outcomes = _import(services, csv_path)
    assert [o.outcome for o in outcomes] == [Outcome.ADDED] * 6
    assert services.catalogue.count_objects() == 3
    photos = services.catalogue.photos_of("obj-1")
    assert [p.view for p in photos] == ["front", "view1"]
    assert all(
        services.blobs.exists(p.blob_key) and services.blobs.exists(p.thumbnail_key) for p in photos
    )
    assert services.index.size == 6
    assert services.catalogue.get_object("obj-1").title == "Object 1"


def test_reimport_reports_duplicates_and_stores_nothing_twice(services, tmp_path: Path) -> None:
    csv_path = write_catalogue(tmp_path / "cat", n_objects=2)
    _import(services, csv_path)
    blobs_before = sorted(services.blobs.keys())
    outcomes = _import(services, csv_path)
    assert [o.outcome for o in outcomes] == [Outcome.DUPLICATE] * 2
    assert "already stored for object obj-0" in outcomes[0].message
    assert sorted(services.blobs.keys()) == blobs_before
    assert services.index.size == 2


def test_bad_rows_are_reported_and_good_rows_kept(services, tmp_path: Path) -> None:
    root = tmp_path / "cat"
    csv_path = write_catalogue(root, n_objects=2)
    (root / "photos" / "broken.jpg").write_bytes(jpeg_bytes(textured_object(9))[:300])
    (root / "photos" / "empty.jpg").write_bytes(b"")
    with csv_path.open("a") as fh:
        fh.write("photos/broken.jpg,obj-9,Broken,,\n")
        fh.write("photos/empty.jpg,obj-10,Empty,,\n")
        fh.write("photos/missing.jpg,obj-11,Missing,,\n")
        fh.write("photos/obj0_0.jpg,,No id,,\n")
    parsed = read_catalogue_csv(csv_path)
    errors = [r for r in parsed.rows if isinstance(r, RowError)]
    assert [e.source for e in errors] == ["catalogue.csv:6", "catalogue.csv:7"]
    assert "not found" in errors[0].message and "object_id" in errors[1].message
    outcomes = ingest_photos(services, iter_items(parsed))
    by = {o.outcome: [x for x in outcomes if x.outcome is o.outcome] for o in outcomes}
    assert len(by[Outcome.ADDED]) == 2
    messages = [o.message for o in by[Outcome.ERROR]]
    assert any("catalogue.csv:4" in m and "truncated" in m for m in messages)
    assert any("catalogue.csv:5" in m and "empty file" in m for m in messages)
    # nothing half-written: the bad objects do not exist and no stray blobs were stored
    assert services.catalogue.count_objects() == 2
    assert len(list(services.blobs.keys("photos/"))) == 2


def test_csv_without_required_columns_fails_whole(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("file,name\na.jpg,x\n")
    with pytest.raises(InvalidInput, match="missing column"):
        read_catalogue_csv(path)


def test_object_of_another_institution_is_a_conflict(services, tmp_path: Path) -> None:
    csv_path = write_catalogue(tmp_path / "a", n_objects=1)
    ingest_photos(services, iter_items(read_catalogue_csv(csv_path, institution="Museum A")))
    other = write_catalogue(tmp_path / "b", n_objects=2)
    outcomes = ingest_photos(
        services, iter_items(read_catalogue_csv(other, institution="Museum B"))
    )
    assert outcomes[0].outcome is Outcome.DUPLICATE  # same bytes as A's photo
    (tmp_path / "b" / "photos" / "obj0_0.jpg").write_bytes(
        jpeg_bytes(photographed(textured_object(0)))
    )
    outcomes = ingest_photos(
        services, iter_items(read_catalogue_csv(other, institution="Museum B"))
    )
    (refused,) = [o for o in outcomes if o.object_id == "obj-0"]
    assert refused.outcome is Outcome.ERROR
    assert "already belongs to 'Museum A'" in refused.message
    assert len(services.catalogue.photos_of("obj-0")) == 1


def test_search_ranks_the_right_object_first_and_filters(services, tmp_path: Path) -> None:
    _import(services, write_catalogue(tmp_path / "cat", n_objects=5))
    query = decode_image(jpeg_bytes(photographed(textured_object(3), seed=7)))
    result = search(services, query, top_k=3)
    assert result.hits[0].object_id == "obj-3"
    assert result.objects_searched == 5
    services.catalogue.set_status(
        "obj-1", StatusChange(status=ObjectStatus.STOLEN, reference="POL-1")
    )
    result = search(services, query, top_k=3, statuses=[ObjectStatus.STOLEN])
    assert [h.object_id for h in result.hits] == ["obj-1"]
    assert result.hits[0].loss_reference == "POL-1"
    assert result.objects_searched == 1


def test_stale_index_is_caught_up_and_missing_one_rebuilt(settings, tmp_path: Path) -> None:
    services = build_services(settings, embedder=FakeEmbedder())
    _import(services, write_catalogue(tmp_path / "cat", n_objects=3))
    services.close()
    # a stale index (photos added while another copy of the index was saved) is not trusted
    services = build_services(settings, embedder=FakeEmbedder())
    assert not services.index_rebuilt and services.index.size == 3
    services.index.remove(np.array([1]))
    services.index.meta.catalogue_version -= 1  # saved before the catalogue's last change
    services.index.save()
    index, rebuilt = open_index(settings, services.catalogue, services.embedder)
    assert not rebuilt and index.size == 3 and 1 in index.ids()
    for f in settings.index_path.iterdir():
        f.unlink()
    index, rebuilt = open_index(settings, services.catalogue, services.embedder)
    assert rebuilt and index.size == 3
    services.catalogue.close()


def test_model_change_needs_reembedding(settings, tmp_path: Path) -> None:
    from ingest.reembed import reembed_missing

    services = build_services(settings, embedder=FakeEmbedder())
    _import(services, write_catalogue(tmp_path / "cat", n_objects=2))
    services.close()
    other = FakeEmbedder(side=4)
    other.version = "2"
    services = build_services(settings, embedder=other)
    assert services.index.size == 0  # vectors of another model are never mixed in
    assert reembed_missing(services) == 2
    index, _ = open_index(settings, services.catalogue, other, force_rebuild=True)
    assert index.size == 2 and index.meta.dim == 48
    services.catalogue.close()


def test_symlink_written_as_plain_file_is_followed(tmp_path: Path) -> None:
    from ingest.catalogue_csv import resolve_path

    (tmp_path / "shared" / "photos").mkdir(parents=True)
    (tmp_path / "shared" / "photos" / "a.jpg").write_bytes(b"x")
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "catalogue").write_text("../shared/photos")
    assert (
        resolve_path(tmp_path / "set", "catalogue/a.jpg")
        == (tmp_path / "shared/photos/a.jpg").resolve()
    )
