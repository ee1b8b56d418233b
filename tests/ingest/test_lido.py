"""LIDO import and export: field mapping, bad records, round trips, schema validity."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from engine.services import Services, build_services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.export import ExportFormat, export_catalogue, select_objects, validate_lido
from ingest.lido import RecordError, UrlFetcher, read_lido_file
from ingest.photos import Outcome, PhotoItem, ingest_photos
from kernel.enums import ObjectStatus
from kernel.schemas import OBJECT_ID_FIELDS, StatusChange
from kernel.settings import EmbedderSettings, Settings
from models.embedders import FakeEmbedder
from tests.utils.images import jpeg_bytes, textured_object
from tests.utils.lido import lido_record, lido_wrap

NO_URLS = UrlFetcher(hosts=[], timeout_s=5, max_bytes=10_000_000)


def _museum(root: Path, n: int = 3) -> Path:
    (root / "img").mkdir(parents=True)
    for i in range(n):
        (root / "img" / f"o{i}.jpg").write_bytes(jpeg_bytes(textured_object(i)))
    path = root / "export.xml"
    records = [lido_record(f"BG-NM/{i}", links=[f"img/o{i}.jpg"]) for i in range(n)]
    path.write_text(lido_wrap(records), encoding="utf-8")
    return path


def _second_services(tmp_path: Path, migrated_catalogue: Path) -> Services:
    home = tmp_path / "home2"
    home.mkdir()
    shutil.copyfile(migrated_catalogue, home / "catalogue.sqlite3")
    settings = Settings(home=home, embedder=EmbedderSettings(name="fake", batch_size=4))
    return build_services(settings, embedder=FakeEmbedder())


def _records(services: Services) -> dict[str, dict[str, object]]:
    objects = select_objects(services.catalogue.engine)
    return {o.object_id: o.model_dump(exclude={"loss_date", "loss_reference"}) for o in objects}


def test_record_maps_to_object_id_fields(tmp_path: Path) -> None:
    parsed = read_lido_file(_museum(tmp_path, 1), fetcher=NO_URLS)
    [item] = parsed.rows
    assert isinstance(item, PhotoItem)
    record = item.record
    # "/" is not allowed in an artmatch id
    assert record.object_id == "BG-NM:0"
    assert record.institution == "National Museum"
    assert record.object_type == "icon"
    assert record.title == "Icon"
    # the production event, not the acquisition
    assert record.maker == "Unknown master"
    assert record.date_period == "17th century"
    assert record.materials_techniques == "tempera, gold leaf"
    assert record.measurements == "32 x 24 cm"
    assert record.inscriptions_markings == "IC XC"
    assert record.description == "Tempera on wood"
    assert record.distinguishing_features == "Crack lower left"
    assert record.subject == "Saint Nicholas"
    assert record.inventory_number == "INV-BG-NM/0"
    # the master representation, not the thumbnail; its perspective is the view
    assert item.source.endswith("(img/o0.jpg)") and item.view == "front"


def test_work_id_stands_in_for_a_missing_record_id(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(textured_object(5)))
    path = tmp_path / "one.xml"
    path.write_text(lido_wrap([lido_record(None, links=["a.jpg"])]), encoding="utf-8")
    [item] = read_lido_file(path, fetcher=NO_URLS).rows
    assert isinstance(item, PhotoItem) and item.record.object_id == "INV-x"


def test_bad_records_are_named_and_skipped(tmp_path: Path, services: Services) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "good.jpg").write_bytes(jpeg_bytes(textured_object(1)))
    (tmp_path / "img" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path.parent / "outside.jpg").write_bytes(jpeg_bytes(textured_object(2)))
    records = [
        lido_record("good", links=["img/good.jpg"]),
        # neither lidoRecID nor workID
        lido_record(None, links=["img/good.jpg"]).replace(
            '<lido:workID lido:type="inventory number">INV-x</lido:workID>', ""
        ),
        lido_record("no-image", links=[]),
        lido_record("missing", links=["img/nowhere.jpg"]),
        lido_record("escape", links=["../outside.jpg"]),
        lido_record("remote", links=["http://example.org/a.jpg"]),
        lido_record("unreadable", links=["img/broken.jpg"]),
        # one record that is not well-formed XML spoils only itself
        lido_record("torn", links=["img/good.jpg"]).replace("</lido:titleWrap>", ""),
    ]
    path = tmp_path / "mixed.xml"
    path.write_text(lido_wrap(records), encoding="utf-8")
    rows = read_lido_file(path, fetcher=NO_URLS).rows
    errors = {r.record: r.message for r in rows if isinstance(r, RecordError)}
    assert set(errors) == {"mixed.xml", "no-image", "missing", "escape", "remote", "torn"}
    assert "without lidoRecID" in errors["mixed.xml"]
    assert "host not allowed" in errors["remote"]
    assert "not well-formed" in errors["torn"]
    items = [r for r in rows if isinstance(r, PhotoItem)]
    outcomes = ingest_photos(services, items)
    by_object = {o.object_id: o for o in outcomes}
    assert by_object["good"].outcome is Outcome.ADDED
    assert by_object["unreadable"].outcome is Outcome.ERROR
    assert "unreadable" in by_object["unreadable"].message
    # nothing half-imported: the record whose only photo failed left no object behind
    assert [o.object_id for o in select_objects(services.catalogue.engine)] == ["good"]


def test_a_document_without_records_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_text("<root/>", encoding="utf-8")
    [error] = read_lido_file(path, fetcher=NO_URLS).rows
    assert isinstance(error, RecordError) and "no LIDO record" in error.message


def test_lido_round_trip_is_valid_and_keeps_the_records(
    tmp_path: Path, services: Services, migrated_catalogue: Path
) -> None:
    parsed = read_lido_file(_museum(tmp_path / "museum"), fetcher=NO_URLS)
    ingest_photos(services, [r for r in parsed.rows if isinstance(r, PhotoItem)])
    before = _records(services)
    assert len(before) == 3

    out = tmp_path / "out" / "catalogue.xml"
    out.parent.mkdir()
    result = export_catalogue(
        engine=services.catalogue.engine,
        blobs=services.blobs,
        objects=select_objects(services.catalogue.engine),
        out=out,
        fmt=ExportFormat.LIDO,
    )
    assert (result.objects, result.photos) == (3, 3)
    data = out.read_bytes()
    assert validate_lido(data) == []
    # the check is a real one: a record without its required lidoRecID is refused
    broken = data.replace(b"<lido:lidoRecID", b"<lido:x", 1).replace(
        b"</lido:lidoRecID>", b"</lido:x>", 1
    )
    assert validate_lido(broken)

    again = _second_services(tmp_path, migrated_catalogue)
    try:
        rows = read_lido_file(out, fetcher=NO_URLS).rows
        assert all(isinstance(r, PhotoItem) for r in rows)
        outcomes = ingest_photos(again, [r for r in rows if isinstance(r, PhotoItem)])
        assert all(o.outcome is Outcome.ADDED for o in outcomes)
        assert _records(again) == before
        views = {p.view for o in before for p in again.catalogue.photos_of(o)}
        assert views == {"front"}
    finally:
        again.close()


def test_csv_export_imports_again(
    tmp_path: Path, services: Services, migrated_catalogue: Path
) -> None:
    parsed = read_lido_file(_museum(tmp_path / "museum", 2), fetcher=NO_URLS)
    ingest_photos(services, [r for r in parsed.rows if isinstance(r, PhotoItem)])
    services.catalogue.set_status("BG-NM:1", StatusChange(status=ObjectStatus.STOLEN))
    before = _records(services)
    out = tmp_path / "objects.csv"
    export_catalogue(
        engine=services.catalogue.engine,
        blobs=services.blobs,
        objects=select_objects(services.catalogue.engine),
        out=out,
        fmt=ExportFormat.CSV,
    )
    with out.open(encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header[:5] == ["image", "object_id", "institution", "status", "view"]
    assert header[5:] == list(OBJECT_ID_FIELDS)
    again = _second_services(tmp_path, migrated_catalogue)
    try:
        table = read_catalogue_csv(out)
        assert table.ignored_columns == []
        ingest_photos(again, list(iter_items(table)))
        assert _records(again) == before
    finally:
        again.close()


def test_json_export_selects_by_status(tmp_path: Path, services: Services) -> None:
    parsed = read_lido_file(_museum(tmp_path / "museum", 3), fetcher=NO_URLS)
    ingest_photos(services, [r for r in parsed.rows if isinstance(r, PhotoItem)])
    services.catalogue.set_status(
        "BG-NM:2", StatusChange(status=ObjectStatus.STOLEN, reference="POL-1")
    )
    chosen = select_objects(services.catalogue.engine, statuses=[ObjectStatus.STOLEN])
    out = tmp_path / "stolen.json"
    export_catalogue(
        engine=services.catalogue.engine,
        blobs=services.blobs,
        objects=chosen,
        out=out,
        fmt=ExportFormat.JSON,
    )
    document = json.loads(out.read_text(encoding="utf-8"))
    [obj] = document["objects"]
    assert obj["object_id"] == "BG-NM:2" and obj["loss_reference"] == "POL-1"
    [photo] = obj["photos"]
    assert (out.parent / photo["image"]).read_bytes()[:2] == b"\xff\xd8"


def test_urls_only_from_allowed_hosts() -> None:
    fetcher = UrlFetcher(hosts=["images.museum.bg", "127.0.0.1:8080"], timeout_s=1, max_bytes=10)
    assert fetcher.allows("https://images.museum.bg/a.jpg")
    assert fetcher.allows("http://IMAGES.museum.bg:443/a.jpg")
    assert fetcher.allows("http://127.0.0.1:8080/a.jpg")
    assert not fetcher.allows("http://127.0.0.1:9999/a.jpg")
    assert not fetcher.allows("http://evil.example/a.jpg")
    assert not fetcher.allows("file:///etc/passwd")
    assert not fetcher.allows("ftp://images.museum.bg/a.jpg")
    with pytest.raises(Exception, match="host not allowed"):
        fetcher.fetch("http://evil.example/a.jpg")
