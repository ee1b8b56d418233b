"""The command line's plain failures: a missing ``--home``, an output path that is a folder
or cannot be written, an input that is a folder; and a search table that fits 80 columns."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from rich.console import Console

import cli.search
from cli.main import main
from kernel.enums import Decision, ObjectStatus
from kernel.schemas import SearchHit, SearchResult
from tests.utils.images import jpeg_bytes, textured_object


def _main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """Run ``artmatch ARGS`` as the installed command does; (exit status, stderr + stdout)."""
    monkeypatch.setattr(sys, "argv", ["artmatch", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), captured.err + captured.out


def _one_line_error(output: str, *words: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    for word in words:
        assert word in lines[0], output


# -- --home ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["fsck"], ["db", "current"], ["reindex"], ["audit", "verify"]])
def test_a_missing_home_is_refused_not_created(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    home = tmp_path / "typo"
    code, output = _main(monkeypatch, capsys, "--home", str(home), *command)
    assert code != 0
    _one_line_error(output, str(home), "no such directory", "--create-home")
    assert not home.exists()


def test_serve_without_demo_refuses_a_missing_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    def never(*_a: object, **_k: object) -> None:
        raise AssertionError("serve started a server on a missing home")

    # Were the refusal gone, the test fails here instead of serving until killed.
    monkeypatch.setattr(uvicorn, "run", never)
    home = tmp_path / "typo"
    code, output = _main(monkeypatch, capsys, "--home", str(home), "serve")
    assert code != 0
    _one_line_error(output, "no such directory")
    assert not home.exists()


def test_a_home_that_is_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "file"
    home.write_text("x")
    code, output = _main(monkeypatch, capsys, "--home", str(home), "db", "current")
    assert code != 0
    _one_line_error(output, "not a directory")


def test_create_home_and_create_admin_make_a_new_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "new"
    code, output = _main(monkeypatch, capsys, "--home", str(home), "--create-home", "db", "upgrade")
    assert code == 0, output
    assert (home / "catalogue.sqlite3").exists()

    other = tmp_path / "other"
    monkeypatch.setenv("ARTMATCH_ADMIN_PASSWORD", "a-long-password-1")
    code, output = _main(
        monkeypatch, capsys, "--home", str(other), "create-admin", "--username", "root"
    )
    assert code == 0, output
    assert (other / "catalogue.sqlite3").exists()


# -- output paths ---------------------------------------------------------------------------


def _manifest(tmp_path: Path) -> Path:
    photo = tmp_path / "listing.jpg"
    photo.write_bytes(jpeg_bytes(textured_object(1)))
    manifest = tmp_path / "listings.csv"
    manifest.write_text(f"listing_id,image\nL-1,{photo}\n", encoding="utf-8")
    return manifest


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    # Root writes through any mode bits; sysfs refuses new files to everyone.
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root without /sys: no folder root cannot write in")
    return Path("/sys/kernel")


def test_check_listings_refuses_a_folder_as_report_before_checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home, manifest = _home(tmp_path), _manifest(tmp_path)
    folder = tmp_path / "reports"
    (folder.with_name("reports.csv")).mkdir(parents=True)
    code, output = _main(
        monkeypatch,
        capsys,
        "--home",
        str(home),
        "check-listings",
        str(manifest),
        "--out",
        str(folder),
    )
    assert code != 0
    _one_line_error(output, "--out", "is a directory")
    # Refused before the model was loaded or any listing checked.
    assert "Checking listings" not in output


@pytest.mark.parametrize("where", ["missing folder", "unwritable folder", "file as folder"])
def test_check_listings_refuses_a_report_it_cannot_write(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    home, manifest = _home(tmp_path), _manifest(tmp_path)
    if where == "missing folder":
        stem = tmp_path / "nowhere" / "report"
    elif where == "unwritable folder":
        stem = _unwritable_folder(tmp_path) / "report"
    else:
        (tmp_path / "plain").write_text("x")
        stem = tmp_path / "plain" / "report"
    code, output = _main(
        monkeypatch,
        capsys,
        "--home",
        str(home),
        "check-listings",
        str(manifest),
        "--out",
        str(stem),
    )
    assert code != 0
    reason = {
        "missing folder": "does not exist",
        "unwritable folder": "cannot write",
        "file as folder": "is not a folder",
    }[where]
    _one_line_error(output, "--out", str(stem), reason)


def test_search_refuses_an_evidence_folder_it_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home(tmp_path)
    photo = tmp_path / "seized.jpg"
    photo.write_bytes(jpeg_bytes(textured_object(2)))
    (tmp_path / "afile").write_text("x")
    for target, words in (
        (tmp_path / "afile", ("--evidence", "not a folder")),
        (_unwritable_folder(tmp_path) / "evidence", ("--evidence",)),
    ):
        code, output = _main(
            monkeypatch,
            capsys,
            "--home",
            str(home),
            "search",
            str(photo),
            "--evidence",
            str(target),
        )
        assert code != 0
        _one_line_error(output, *words)


def test_create_token_refuses_a_folder_before_making_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home(tmp_path)
    code, output = _main(
        monkeypatch, capsys, "--home", str(home), "create-token", "nobody", "--out", str(tmp_path)
    )
    assert code != 0
    _one_line_error(output, "--out", "is a directory")


@pytest.mark.parametrize("command", ["search", "import-catalogue", "check-listings"])
def test_a_folder_given_as_input_file_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    home = _home(tmp_path)
    folder = tmp_path / "photos"
    folder.mkdir()
    code, output = _main(monkeypatch, capsys, "--home", str(home), command, str(folder))
    assert code != 0
    _one_line_error(output, "photos")


# -- the search table -----------------------------------------------------------------------


def _hit(rank: int, object_id: str, decision: Decision, **kw: object) -> SearchHit:
    fields: dict[str, object] = {
        "rank": rank,
        "object_id": object_id,
        "institution": "Народен музей",
        "status": ObjectStatus.IN_COLLECTION,
        "title": None,
        "maker": None,
        "similarity": 0.9234,
        "confidence": 0.99999 if decision is Decision.MATCH else None,
        "inliers": 1234,
        "decision": decision,
        "is_match": decision is Decision.MATCH,
        "photo_id": rank,
        "photo_view": None,
        "thumbnail_key": "t",
    }
    return SearchHit.model_validate(fields | kw)


def test_the_search_table_fits_80_columns_without_cutting_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hits = [
        _hit(
            1,
            "NMB-INV-2021-000123",
            Decision.MATCH,
            title="Икона Свети Никола с житие, XVII век, темпера върху дърво, сребърен обков",
            region=(1203, 455, 1800, 1322),
        ),
        _hit(2, "MNAR-12345/2019-b", Decision.LEAD, status=ObjectStatus.STOLEN, inliers=None),
        _hit(3, "obj-3", Decision.NONE, status=ObjectStatus.RECOVERED, title="Vierge à l'Enfant"),
    ]
    result = SearchResult(
        query_sha256="a" * 64,
        query_size=(4000, 3000),
        threshold_on="confidence",
        threshold=0.999,
        verification=True,
        model="m",
        index_version=123456,
        objects_searched=123456,
        statuses=[ObjectStatus.STOLEN, ObjectStatus.MISSING],
        institutions=["Народен музей Бели Манастир"],
        hits=hits,
    )
    buffer = io.StringIO()
    # As `cli.app.out` is made (soft wrapping), at the width of a plain terminal.
    monkeypatch.setattr(cli.search, "out", Console(file=buffer, width=80, soft_wrap=True))
    cli.search._print_result("seized-photo-from-the-market.jpg", result)
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "…" not in text, text
    lines = text.splitlines()
    for hit in hits:
        # Each id whole on one line, with its decision beside it.
        [row] = [line for line in lines if hit.object_id in line.split()]
        assert {Decision.MATCH: "MATCH", Decision.LEAD: "lead", Decision.NONE: ""}[
            hit.decision
        ] in row
    assert ">0.9999" in text and "1203,455,1800,1322" in text
