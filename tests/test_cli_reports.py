"""`artmatch report make` and `artmatch report verify` on the embedded default (fake
embedder): a CLI search, its signed report, a tampered copy, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object

runner = CliRunner()


def _run(home: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def test_report_make_and_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    home = tmp_path / "home"
    csv_path = write_catalogue(tmp_path / "museum", n_objects=3)
    assert _run(home, "import-catalogue", str(csv_path)).exit_code == 0
    query = tmp_path / "q.jpg"
    query.write_bytes(jpeg_bytes(photographed(textured_object(1), seed=3)))
    result = _run(home, "search", str(query))
    assert result.exit_code == 0, result.output

    html = tmp_path / "r.html"
    result = _run(home, "report", "make", "1", "--html", "--out", str(html))
    assert result.exit_code == 0, result.output
    assert "match report" in result.output and "obj-1" in html.read_text()
    result = _run(home, "report", "verify", str(html))
    assert result.exit_code == 0 and "VALID match report" in result.output

    pdf = tmp_path / "r.pdf"
    assert _run(home, "report", "make", "1", "-o", str(pdf)).exit_code == 0
    assert _run(home, "report", "verify", str(pdf)).exit_code == 0

    tampered = tmp_path / "t.html"
    tampered.write_text(html.read_text().replace("obj-1", "obj-2", 1))
    result = _run(home, "report", "verify", str(tampered))
    assert result.exit_code == 1 and "INVALID" in result.output

    # checked against another installation's key: not ours
    other = tmp_path / "other"
    other.mkdir()
    result = _run(other, "report", "verify", str(html))
    assert result.exit_code == 1 and "different key" in result.output

    # bad input: one line, non-zero, no traceback
    result = runner.invoke(app, ["--home", str(home), "report", "verify", str(tmp_path / "no")])
    assert result.exit_code != 0 and "cannot read file" in str(result.exception or result.output)
    result = runner.invoke(app, ["--home", str(home), "report", "make", "99"])
    assert result.exit_code != 0
