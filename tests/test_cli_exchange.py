"""The exchange commands: import-lido, harvest-oai and export, on the fake embedder."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from kernel.errors import ArtmatchError
from kernel.settings import Settings
from tests.utils.images import jpeg_bytes, textured_object
from tests.utils.lido import OaiServer, lido_record, lido_wrap, oai_catalogue

runner = CliRunner()


def _invoke(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args), obj=settings)
    # `cli.main.main` prints an ArtmatchError as one line with exit status 2; anything else
    # would reach the user as a traceback.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, ArtmatchError), repr(result.exception)
        assert "\n" not in str(result.exception)
    return result


def _folder(root: Path) -> Path:
    (root / "img").mkdir(parents=True)
    records = []
    for i in range(3):
        (root / "img" / f"{i}.jpg").write_bytes(jpeg_bytes(textured_object(i)))
        records.append(lido_record(f"MK-{i}", links=[f"img/{i}.jpg"], title=f"Икона {i}"))
    (root / "a.xml").write_text(lido_wrap(records[:2]), encoding="utf-8")
    (root / "b.xml").write_text(lido_wrap(records[2:]), encoding="utf-8")
    (root / "notes.txt").write_text("not LIDO")
    return root


def _other_home(settings: Settings, tmp_path: Path) -> Settings:
    home = tmp_path / "home2"
    home.mkdir()
    shutil.copyfile(settings.home / "catalogue.sqlite3", home / "catalogue.sqlite3")
    return settings.model_copy(update={"home": home})


def test_import_lido_folder_then_export_and_import_again(
    settings: Settings, tmp_path: Path, migrated_catalogue: Path
) -> None:
    fresh = _other_home(settings, tmp_path)
    result = _invoke(settings, "import-lido", str(_folder(tmp_path / "museum")))
    assert result.exit_code == 0, result.output
    assert "3 photo(s) of 3 object(s) added, 0 duplicate(s), 0 bad record(s)" in result.output
    again = _invoke(settings, "import-lido", str(tmp_path / "museum"))
    assert "0 photo(s) of 0 object(s) added, 3 duplicate(s)" in again.output

    out = tmp_path / "out" / "mk.xml"
    out.parent.mkdir()
    result = _invoke(settings, "export", "--format", "lido", str(out))
    assert result.exit_code == 0, result.output
    assert "3 object(s), 3 photo(s) written" in result.output
    assert len(list((tmp_path / "out" / "mk-photos").iterdir())) == 3

    result = _invoke(fresh, "import-lido", str(out))
    assert "3 photo(s) of 3 object(s) added" in result.output

    for home, name in ((settings, "one.csv"), (fresh, "two.csv")):
        assert _invoke(home, "export", "--format", "csv", str(tmp_path / name)).exit_code == 0
    rows = [
        # the photos' folder is named after the file; the photo files are the same
        [
            r | {"image": Path(r["image"]).name}
            for r in csv.DictReader(p.read_text("utf-8").splitlines())
        ]
        for p in (tmp_path / "one.csv", tmp_path / "two.csv")
    ]
    assert rows[0] == rows[1]
    assert {r["title"] for r in rows[0]} == {"Икона 0", "Икона 1", "Икона 2"}


def test_export_selects_by_institution_and_object(settings: Settings, tmp_path: Path) -> None:
    _invoke(settings, "import-lido", str(_folder(tmp_path / "museum")))
    out = tmp_path / "sel.json"
    result = _invoke(settings, "export", "--format", "json", "--object", "MK-1", str(out))
    assert "1 object(s), 1 photo(s)" in result.output
    result = _invoke(settings, "export", "--format", "json", "--institution", "Nowhere", str(out))
    assert "0 object(s), 0 photo(s)" in result.output


def test_bad_arguments_are_one_line(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    cases = {
        ("import-lido", str(tmp_path / "missing.xml")): "no such file",
        ("import-lido", str(tmp_path / "empty")): "no .xml files",
        ("export", "--format", "pdf", str(tmp_path / "x")): "unknown format",
        ("export", "--status", "lost", str(tmp_path / "x")): "unknown status",
        ("export", str(tmp_path / "empty")): "is a directory",
        ("export", str(tmp_path / "nowhere" / "x.xml")): "does not exist",
        ("harvest-oai", "ftp://example.org/oai"): "not an http(s) URL",
    }
    for args, words in cases.items():
        result = _invoke(settings, *args)
        assert isinstance(result.exception, ArtmatchError), (args, result.output)
        assert words in str(result.exception), (args, str(result.exception))
    missing = settings.model_copy(update={"home": tmp_path / "no-home"})
    result = _invoke(missing, "export", str(tmp_path / "x.xml"))
    assert "no catalogue here" in str(result.exception)
    assert not (tmp_path / "no-home").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_export_to_an_unwritable_folder(settings: Settings, tmp_path: Path) -> None:
    _invoke(settings, "import-lido", str(_folder(tmp_path / "museum")))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = _invoke(settings, "export", str(locked / "x.xml"))
    finally:
        locked.chmod(0o700)
    assert isinstance(result.exception, ArtmatchError)
    assert "not writable" in str(result.exception)


@pytest.mark.integration
def test_harvest_oai_command(settings: Settings) -> None:
    with OaiServer() as server:
        oai_catalogue(server, n=4, per_page=2, image=lambda i: jpeg_bytes(textured_object(i)))
        settings.exchange.image_hosts = ["127.0.0.1"]
        url = server.base + "/oai"
        result = _invoke(settings, "harvest-oai", url)
        assert result.exit_code == 0, result.output
        assert "4 photo(s) of 4 object(s) added" in result.output
        assert "4 record(s) in 2 page(s)" in result.output
        result = _invoke(settings, "harvest-oai", url, "--set", "none", "--from", "2026-01-02")
        assert server.requests[-2] == {
            "verb": "ListRecords",
            "metadataPrefix": "lido",
            "set": "none",
            "from": "2026-01-02",
        }
        assert "0 photo(s) of 0 object(s) added, 4 duplicate(s)" in result.output
