"""A hostile-input corpus, made here, sent to every upload path: the photo upload and search
APIs and the `search` and `import-catalogue` commands. Nothing answers 500 or a traceback,
every refusal is a 4xx JSON body (or one line and a non-zero exit) with a message, and the
good photos of a mixed upload are stored. (Batch-job manifests have their own tests.)"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from kernel.errors import ArtmatchError
from kernel.settings import Settings
from tests.service import conftest as service_fixtures
from tests.service.conftest import Api
from tests.utils.images import textured_object

runner = CliRunner()
# The service tests' app with accounts of every role and their tokens.
api = service_fixtures.api
web_settings = service_fixtures.web_settings


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("photo.jpg", b"not really")
    return buf.getvalue()


def _gif(seed: int) -> bytes:
    frames = [textured_object(seed + i, size=(80, 60)).convert("P") for i in range(3)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _photo(seed: int, size: tuple[int, int] = (160, 120)) -> Image.Image:
    return textured_object(seed, size=(400, 400)).resize(size)


def corpus() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(good photos, bad files) by file name; every good one distinct."""
    jpeg = _save(_photo(1), "JPEG")
    grey16 = (np.asarray(_photo(2).convert("L"), np.uint16) * 250).astype(np.uint16)
    good = {
        "plain.jpg": jpeg,
        "grey16.png": _save(Image.fromarray(grey16), "PNG"),
        "cmyk.jpg": _save(_photo(3).convert("CMYK"), "JPEG"),
        "palette.png": _save(_photo(4).convert("P"), "PNG"),
        "alpha.png": _save(_photo(5).convert("RGBA"), "PNG"),
        "animated.gif": _gif(6),
        "banner.png": _save(_photo(7, (2000, 190)), "PNG"),
        "scroll.jpg": _save(_photo(8, (190, 2000)), "JPEG"),
        "frieze.png": _save(_photo(9, (4000, 100)), "PNG"),
        "sword.png": _save(_photo(10, (50, 3000)), "PNG"),
        "dot.png": _save(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
        "thread.png": _save(_photo(11, (3, 3000)), "PNG"),
    }
    bad = {
        "empty.jpg": b"",
        "notes.txt": b"this is a text file, not a photo\n",
        "scan.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
        "photos.zip": _zip(),
        "corrupt.jpg": jpeg[:20] + bytes(np.random.default_rng(0).integers(0, 255, 2000, np.uint8)),
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "truncated.png": good["banner.png"][: len(good["banner.png"]) // 2],
        "huge-header.png": _png_header(100_000, 100_000),
        "zero.png": _png_header(0, 0),
    }
    return good, bad


GOOD, BAD = corpus()


def _assert_refusal(response, name: str) -> None:  # type: ignore[no-untyped-def]
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
    body = response.json()
    assert body["message"] and "\n" not in body["message"], (name, body)
    assert "Traceback" not in response.text


def test_photo_upload_api(api: Api) -> None:
    created = api.as_("reg_a", "POST", "/api/v1/objects", json={"object_id": "A-1"})
    assert created.status_code == 201, created.text
    url = "/api/v1/objects/A-1/photos"
    for name, data in BAD.items():
        _assert_refusal(api.as_("reg_a", "POST", url, files=[("files", (name, data))]), name)
    # One upload of everything: the good photos are stored, the bad ones reported per file.
    # (Twenty files at most in one upload; a script sends no useful content type, so each
    # file's own bytes decide.)
    some_bad = dict(list(BAD.items())[: 20 - len(GOOD)])
    files = [
        ("files", (name, data, "application/octet-stream"))
        for name, data in {**some_bad, **GOOD}.items()
    ]
    response = api.as_("reg_a", "POST", url, files=files)
    assert response.status_code == 201, response.text
    outcomes = {o["filename"]: o for o in response.json()}
    for name in GOOD:
        assert outcomes[name]["outcome"] == "added", outcomes[name]
    for name in some_bad:
        assert outcomes[name]["outcome"] == "error" and outcomes[name]["message"], name
    photos = api.as_("reg_a", "GET", url).json()
    assert len(photos) == len(GOOD)


def test_search_api(api: Api) -> None:
    created = api.as_("reg_a", "POST", "/api/v1/objects", json={"object_id": "A-1"})
    assert created.status_code == 201
    files = [("files", ("plain.jpg", GOOD["plain.jpg"]))]
    assert api.as_("reg_a", "POST", "/api/v1/objects/A-1/photos", files=files).status_code == 201
    for name, data in GOOD.items():
        response = api.as_("inv", "POST", "/api/v1/searches", files={"file": (name, data)})
        assert response.status_code == 200, (name, response.text)
    for name, data in BAD.items():
        response = api.as_("inv", "POST", "/api/v1/searches", files={"file": (name, data)})
        _assert_refusal(response, name)


def _invoke(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args), obj=settings)
    # `cli.main.main` turns an ArtmatchError into its one-line message and exit status 2;
    # anything else would reach the user as a traceback.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, ArtmatchError), repr(result.exception)
        assert "\n" not in str(result.exception)
    return result


@pytest.mark.slow  # opens the services once per file: about 5 s
def test_cli_search(settings: Settings, tmp_path: Path) -> None:
    for name, data in {**GOOD, **BAD}.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = _invoke(settings, "search", str(path), "--json")
        if name in GOOD:
            assert result.exit_code == 0, (name, result.output, result.exception)
        else:
            assert isinstance(result.exception, ArtmatchError), (name, result.output)


def test_cli_import_catalogue(settings: Settings, tmp_path: Path) -> None:
    rows = ["image,object_id,institution"]
    for n, (name, data) in enumerate({**BAD, **GOOD}.items()):
        (tmp_path / name).write_bytes(data)
        rows.append(f"{name},obj-{n},Museum A")
    (tmp_path / "catalogue.csv").write_text("\n".join(rows) + "\n")
    result = _invoke(settings, "import-catalogue", str(tmp_path / "catalogue.csv"))
    assert result.exit_code == 1, result.output
    assert f"{len(GOOD)} photo(s) added, 0 duplicate(s), {len(BAD)} bad row(s)" in result.output
    # A second run keeps what is stored and adds nothing twice.
    again = _invoke(settings, "import-catalogue", str(tmp_path / "catalogue.csv"))
    assert f"0 photo(s) added, {len(GOOD)} duplicate(s)" in again.output


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_corpus_photos_are_distinct(name: str) -> None:
    assert list(GOOD.values()).count(GOOD[name]) == 1
