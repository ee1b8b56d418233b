"""Listing manifests: photos confined to the manifest folder, odd manifests refused in words,
a listing's identity (source, listing_id, photo), and reports a spreadsheet cannot run."""

from __future__ import annotations

import csv
import json
import os
import threading
from pathlib import Path

import pytest

from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.listings import check_listings, read_manifest, write_report
from ingest.photos import ingest_photos
from kernel.enums import ObjectStatus
from kernel.errors import InvalidInput
from kernel.schemas import StatusChange
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object


def _manifest(folder: Path, rows: list[dict[str, str]], name: str = "m.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run_bounded(services: Services, manifest: Path, **kwargs):  # type: ignore[no-untyped-def]
    # A FIFO or a device read would block for ever: fail the test instead of hanging it.
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(check_listings(services, manifest, **kwargs)), daemon=True
    )
    worker.start()
    worker.join(timeout=60)
    assert result, "check_listings hung or failed"
    return result[0]


def test_listing_photos_never_leave_the_manifest_folder(services: Services, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "query.jpg").write_bytes(jpeg_bytes(textured_object(1)))
    folder = tmp_path / "listings"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg_bytes(textured_object(2)))
    (folder / "subdir").mkdir()
    os.symlink(secret / "query.jpg", folder / "link.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    os.mkfifo(folder / "fifo.jpg")
    services.settings = services.settings.model_copy(update={"max_upload_bytes": 1024 * 1024})
    (folder / "big.jpg").write_bytes(b"\xff" * (1024 * 1024 + 1))
    hostile = {
        "abs": str(secret / "query.jpg"),
        "up": "../secret/query.jpg",
        "link": "link.jpg",
        "zero": "zero.jpg",
        "fifo": "fifo.jpg",
        "dir": "subdir",
        "missing": "nothing.jpg",
        "passwd": "/etc/passwd",
        "big": "big.jpg",
    }
    rows = [{"listing_id": k, "image": v} for k, v in hostile.items()]
    manifest = _manifest(folder, [*rows, {"listing_id": "ok", "image": "good.jpg"}])
    run = _run_bounded(services, manifest)
    assert run.checked == 1 and len(run.errors) == len(hostile)
    for key, message in zip(hostile, run.errors, strict=True):
        assert message.startswith(f"listing {key}: {hostile[key]!r}"), message
        assert str(tmp_path) not in message.replace(hostile[key], "") and "/dev" not in message
    # Missing, a directory, outside: one answer, so that nothing is learnt of what is there.
    kinds = {m.split(": ", 1)[1].split("' ", 1)[1] for m in run.errors if "big" not in m}
    assert kinds == {"is not a readable photo file inside the manifest folder"}
    assert "larger than 1,048,576 bytes" in run.errors[-1]


def test_odd_manifests_are_refused_in_words(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a readable manifest file") as info:
        read_manifest(tmp_path)
    assert str(tmp_path.parent) not in str(info.value)
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"listing_id": "a", "image": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(InvalidInput, match=r"deep.jsonl:1: JSON nested too deeply"):
        read_manifest(deep)
    wide = tmp_path / "wide.csv"
    wide.write_text("listing_id,image,title\nL1,a.jpg," + "x" * 140_000 + "\n")
    with pytest.raises(InvalidInput, match=r"wide.csv:2: a field is longer than 131,072"):
        read_manifest(wide)
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="fifo.csv: not a readable manifest file"):
        read_manifest(fifo)


def test_a_catalogue_csv_field_too_long_spoils_only_its_row(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path / "museum", n_objects=2)
    with path.open("a") as fh:
        fh.write("photos/obj0_0.jpg,obj-9," + "x" * 140_000 + ",Anon,front\n")
    parsed = read_catalogue_csv(path)
    errors = [r for r in parsed.rows if not hasattr(r, "record")]
    assert len(list(iter_items(parsed))) == 2
    assert [e.message for e in errors] == [  # type: ignore[union-attr]
        "catalogue.csv:4: a field is longer than 131,072 characters"
    ]


def _stolen_catalogue(services: Services, tmp_path: Path) -> None:
    ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(tmp_path / "museum"))))
    services.catalogue.set_status("obj-1", StatusChange(status=ObjectStatus.STOLEN))


def test_a_listing_is_its_source_id_and_photo(services: Services, tmp_path: Path) -> None:
    _stolen_catalogue(services, tmp_path)
    first = _manifest(tmp_path / "monday", [{"listing_id": "L1", "image": "a.jpg"}])
    (tmp_path / "monday" / "a.jpg").write_bytes(jpeg_bytes(photographed(textured_object(1), 3)))
    second = _manifest(tmp_path / "tuesday", [{"listing_id": "L1", "image": "a.jpg"}])
    (tmp_path / "tuesday" / "a.jpg").write_bytes(jpeg_bytes(textured_object(77)))

    run = check_listings(services, first)
    assert (run.checked, run.hits) == (1, 1)
    # Another manifest's L1 is another listing: checked, and its report has no foreign hit.
    run = check_listings(services, second)
    assert (run.checked, run.skipped, run.hits) == (1, 0, 0)
    csv_path, json_path = write_report(services, run, tmp_path / "tuesday" / "report")
    assert json.loads(json_path.read_text())["hits"] == []
    # A re-run of the same manifest skips what is done, and still reports it whole.
    run = check_listings(services, first)
    assert (run.checked, run.skipped) == (0, 1)
    _, json_path = write_report(services, run, tmp_path / "monday" / "report")
    assert [h["object_id"] for h in json.loads(json_path.read_text())["hits"]] == ["obj-1"]
    # A new photo under the same id is a new listing.
    (tmp_path / "monday" / "a.jpg").write_bytes(jpeg_bytes(textured_object(78)))
    assert check_listings(services, first).checked == 1


def test_a_venue_names_a_listing_across_manifests(services: Services, tmp_path: Path) -> None:
    photo = jpeg_bytes(textured_object(5))
    for day in ("monday", "tuesday"):
        _manifest(tmp_path / day, [{"listing_id": "L1", "image": "a.jpg", "venue": "Dorotheum"}])
        (tmp_path / day / "a.jpg").write_bytes(photo)
    assert check_listings(services, tmp_path / "monday" / "m.jsonl").checked == 1
    run = check_listings(services, tmp_path / "tuesday" / "m.jsonl")
    assert (run.checked, run.skipped) == (0, 1)


def test_report_cells_never_run_as_formulas(services: Services, tmp_path: Path) -> None:
    _stolen_catalogue(services, tmp_path)
    rows = [
        {
            "listing_id": '=HYPERLINK("http://x")',
            "image": "a.jpg",
            "title": "+cmd|' /C calc'!A0",
            "seller": "@SUM(1)",
            "price": "-2+3",
            "url": "\tx",
        }
    ]
    manifest = _manifest(tmp_path / "l", rows)
    (tmp_path / "l" / "a.jpg").write_bytes(jpeg_bytes(photographed(textured_object(1), 3)))
    run = check_listings(services, manifest)
    csv_path, json_path = write_report(services, run, tmp_path / "l" / "report")
    with csv_path.open(newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    for column in ("listing_id", "listing_title", "seller", "price", "url"):
        assert row[column].startswith("'"), (column, row[column])
    assert row["object_id"] == "obj-1" and not row["similarity"].startswith("'")
    # The JSON report keeps the values as given: it is data, not a spreadsheet.
    assert json.loads(json_path.read_text())["hits"][0]["seller"] == "@SUM(1)"
