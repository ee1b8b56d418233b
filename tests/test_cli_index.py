"""`artmatch index status` and `artmatch index train` on a small catalogue (fake embedder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cli.main import main
from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.settings import get_settings
from tests.utils.catalogue import write_catalogue


@pytest.fixture
def home(services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    csv_path = write_catalogue(tmp_path / "cat", n_objects=4)
    ingest_photos(services, iter_items(read_catalogue_csv(csv_path)))
    services.close()
    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    get_settings.cache_clear()
    yield services.settings.home
    get_settings.cache_clear()


def _main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["artmatch", *args])
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 1), captured.err + captured.out


def test_status_shows_how_it_searches_and_train_keeps_a_small_one_exact(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = _main(monkeypatch, capsys, "--home", str(home), "index", "status")
    assert code == 0, output
    for line in ("kind: auto", "photos: 4", "search: exact", "wants training: no"):
        assert line in output.splitlines(), output
    code, output = _main(monkeypatch, capsys, "--home", str(home), "index", "train")
    assert code == 0 and "index trained: 4 photos, exact search" in output, output


def test_train_on_an_untrainable_kind_or_a_bad_kind_is_one_line_and_nonzero(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARTMATCH_INDEX__KIND", "flat")
    get_settings.cache_clear()
    code, output = _main(monkeypatch, capsys, "--home", str(home), "index", "train")
    lines = [line for line in output.splitlines() if line.strip() and "rebuilt" not in line]
    assert code == 2 and len(lines) == 1 and "Traceback" not in output, output
    assert "index kind 'flat' is not trained; set ARTMATCH_INDEX__KIND=auto" in lines[0]
    monkeypatch.setenv("ARTMATCH_INDEX__KIND", "nope")
    get_settings.cache_clear()
    code, output = _main(monkeypatch, capsys, "--home", str(home), "index", "status")
    lines = [line for line in output.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "nope" in lines[0] and "Traceback" not in output
