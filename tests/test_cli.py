"""End-to-end: the `artmatch` command line on the embedded default with the real model."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object

runner = CliRunner()


def _run(home: Path, *args: str):
    result = runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)
    return result


def _artmatch(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"ARTMATCH_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.integration
@pytest.mark.slow
def test_registrar_investigator_analyst_flow(tmp_path: Path) -> None:
    home = tmp_path / "home"
    csv_path = write_catalogue(tmp_path / "museum", n_objects=6, photos_per_object=2)

    result = _run(home, "import-catalogue", str(csv_path), "--institution", "Museu")
    assert result.exit_code == 0, result.output
    assert "12 photo(s) added, 0 duplicate(s), 0 bad row(s)" in result.output

    # a second import stores nothing twice
    result = _run(home, "import-catalogue", str(csv_path), "--institution", "Museu")
    assert "0 photo(s) added, 12 duplicate(s)" in result.output

    result = _run(
        home, "set-status", "obj-4", "stolen", "--reference", "POL-2026-17", "--date", "2026-03-01"
    )
    assert result.exit_code == 0 and "obj-4 is now stolen" in result.output

    # investigator: a new photo of object 4, cropped and re-lit, ranks it first
    query = tmp_path / "seized.jpg"
    img = photographed(textured_object(4), seed=11)
    w, h = img.size
    query.write_bytes(jpeg_bytes(img.crop((10, 20, w - 15, h - 5)), quality=60))
    result = _run(home, "search", str(query), "--top", "3", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["hits"][0]["object_id"] == "obj-4"
    assert found["hits"][0]["is_match"] and found["hits"][0]["loss_reference"] == "POL-2026-17"
    assert found["objects_searched"] == 6

    result = _run(home, "search", str(query), "--status", "stolen,missing")
    assert result.exit_code == 0 and "obj-4" in result.output

    # analyst: two listings, one of them the stolen object
    listings = tmp_path / "listings"
    listings.mkdir()
    (listings / "a.jpg").write_bytes(jpeg_bytes(photographed(textured_object(4), seed=3)))
    (listings / "b.jpg").write_bytes(jpeg_bytes(textured_object(999)))
    (listings / "c.jpg").write_bytes(b"not a photo")
    manifest = listings / "today.jsonl"
    manifest.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"listing_id": "L1", "image": "a.jpg", "title": "Old painting", "price": "900"},
                {"listing_id": "L2", "image": "b.jpg", "seller": "honest dealer"},
                {"listing_id": "L3", "image": "c.jpg"},
            ]
        )
    )
    result = _run(home, "check-listings", str(manifest))
    assert result.exit_code == 1, result.output  # one listing had a bad image
    assert (
        "3 listing(s): 2 checked now, 0 already checked, 1 new hit(s), 1 error(s)" in result.output
    )
    with (listings / "today.hits.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["listing_id"], r["object_id"]) for r in rows] == [("L1", "obj-4")]
    report = json.loads((listings / "today.hits.json").read_text())
    assert report["errors"][0]["listing_id"] == "L3"
    # the report carries the threshold that decided, and the quantity it applies to
    assert (rows[0]["threshold_on"], report["threshold_on"]) == ("confidence", "confidence")
    assert float(rows[0]["threshold"]) == report["threshold"] < 1
    assert float(rows[0]["confidence"]) >= report["threshold"]

    # a re-run skips what was checked and keeps the report whole
    (listings / "c.jpg").write_bytes(jpeg_bytes(textured_object(998)))
    result = _run(home, "check-listings", str(manifest))
    assert result.exit_code == 0
    assert "1 checked now, 2 already checked" in result.output
    with (listings / "today.hits.csv").open() as fh:
        assert [r["listing_id"] for r in csv.DictReader(fh)] == ["L1"]

    # the index is derived: deleting it is harmless
    for f in (home / "index").iterdir():
        f.unlink()
    result = _run(home, "reindex")
    assert (
        result.exit_code == 0
        and "index rebuilt: 12 photo vectors (0 newly embedded)" in result.output
    )


@pytest.mark.slow  # four subprocesses, each importing the whole stack
def test_cli_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad_csv = tmp_path / "c.csv"
    bad_csv.write_text("file,name\n")
    proc = _artmatch(home, "import-catalogue", str(bad_csv))
    assert proc.returncode == 2
    assert "missing column(s) image, object_id" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = _artmatch(home, "set-status", "nope", "stolen")
    assert proc.returncode == 2 and "no object 'nope'" in proc.stderr

    proc = _artmatch(home, "set-status", "nope", "lost-ish")
    assert proc.returncode == 2 and "unknown status 'lost-ish'" in proc.stderr

    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"listing_id": "x", "image": "a.jpg"}\n{broken\n')
    proc = _artmatch(home, "check-listings", str(manifest))
    assert proc.returncode == 2 and "m.jsonl:2: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    for command in (
        "import-catalogue",
        "search",
        "check-listings",
        "set-status",
        "reindex",
        "eval",
    ):
        assert command in result.output


def test_add_photo_warns_of_a_photo_of_another_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    home = tmp_path / "home"
    painting = textured_object(5)
    first, second = tmp_path / "a.jpg", tmp_path / "b.jpg"
    first.write_bytes(jpeg_bytes(painting))
    w, h = painting.size
    second.write_bytes(jpeg_bytes(painting.crop((4, 4, w - 4, h - 4)).rotate(2)))
    assert _run(home, "add-photo", "OBJ-A", str(first)).exit_code == 0
    result = _run(home, "add-photo", "OBJ-B", str(second))
    assert result.exit_code == 0, result.output
    assert "added" in result.output
    assert f"warning photo {second} of object OBJ-B verifies against object OBJ-A's photo" in (
        " ".join(result.output.split())
    )
    assert "they may be one object" in result.output


def test_catalogue_changes_made_on_the_command_line_are_chained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.catalogue import create_catalogue
    from storage.catalogue.audit import AuditLog

    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    home = tmp_path / "home"
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg_bytes(textured_object(7)))
    assert _run(home, "add-photo", "OBJ-A", str(photo)).exit_code == 0
    assert _run(home, "set-status", "OBJ-A", "stolen", "--reference", "P-1").exit_code == 0
    catalogue = create_catalogue(f"sqlite:///{home / 'catalogue.sqlite3'}")
    try:
        log = AuditLog(catalogue.engine)
        entries, _ = log.entries(offset=0, limit=10)
        assert log.verify().ok
    finally:
        catalogue.close()
    done = {(e.action, e.subject): e for e in entries}
    # The theft re-checks the listings already checked (none here), and says so too.
    assert set(done) == {
        ("photo_add", "OBJ-A"),
        ("object_status", "OBJ-A"),
        ("recheck", "object OBJ-A"),
    }
    assert all(e.actor.startswith("cli:") for e in entries)
    assert done["object_status", "OBJ-A"].details["reference"] == "P-1"


@pytest.mark.slow
def test_a_search_in_a_fresh_process_is_logged_and_chained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process of its own: the search log's tables must load without the web service's.
    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    home = tmp_path / "home"
    photo = tmp_path / "a.jpg"
    photo.write_bytes(jpeg_bytes(textured_object(7)))
    assert _run(home, "add-photo", "OBJ-A", str(photo)).exit_code == 0
    searched = _artmatch(home, "search", str(photo))
    assert searched.returncode == 0, searched.stderr
    verified = _artmatch(home, "audit", "verify")
    assert verified.returncode == 0 and "chain intact: 2 entries" in verified.stdout


def test_a_theft_recorded_on_the_command_line_re_checks_the_listings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    home = tmp_path / "home"
    art = textured_object(8)
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(art))
    assert _run(home, "add-photo", "OBJ-A", str(tmp_path / "a.jpg")).exit_code == 0
    listings = tmp_path / "listings"
    listings.mkdir()
    (listings / "l1.jpg").write_bytes(jpeg_bytes(photographed(art, seed=4)))
    (listings / "m.csv").write_text("listing_id,image\nL1,l1.jpg\n")
    checked = _run(home, "check-listings", str(listings / "m.csv"))
    assert checked.exit_code == 0 and "0 new hit(s)" in checked.output, checked.output
    stolen = _run(home, "set-status", "OBJ-A", "stolen")
    assert stolen.exit_code == 0, stolen.output
    assert "re-checked 1 listing(s)" in stolen.output
    assert "1 showing OBJ-A, 1 new alert(s)" in stolen.output
    again = _run(home, "set-status", "OBJ-A", "missing")  # the same listing: no second alert
    assert "1 showing OBJ-A, 0 new alert(s)" in again.output, again.output
    recovered = _run(home, "set-status", "OBJ-A", "recovered")
    assert "1 open alert(s) of OBJ-A closed" in recovered.output, recovered.output
