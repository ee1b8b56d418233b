"""Batch jobs through the API: each analyst sees their own, and odd manifests are a 4xx."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.enums import Role
from kernel.settings import WebSettings
from service.security import new_token
from tests.service.conftest import Api, password_hash
from tests.service.test_api import AN, _error, _wait_job
from tests.utils.images import jpeg_bytes, textured_object


@pytest.fixture
def web_settings(tmp_path: Path) -> WebSettings:
    (tmp_path / "shared").mkdir()
    return WebSettings(max_request_bytes=3 * 1024 * 1024, manifest_roots=[tmp_path / "shared"])


def _other_analyst(api: Api) -> dict[str, str]:
    accounts = api.client.app.state.runtime.accounts  # type: ignore[attr-defined]
    account = accounts.create_account(
        username="analyst2", password_hash=password_hash(), role=Role.ANALYST, institution=None
    )
    token, digest = new_token()
    accounts.add_token(account_id=account.id, name="test", token_sha256=digest)
    return {"Authorization": f"Bearer {token}"}


def _submit(api: Api, manifest: bytes, *images: tuple[str, bytes], name: str = "l.csv"):  # type: ignore[no-untyped-def]
    files = [("manifest", (name, manifest, "text/csv"))]
    files += [("images", (n, data, "image/jpeg")) for n, data in images]
    return api.as_(AN, "POST", "/api/v1/jobs", files=files)


def test_an_analyst_sees_only_their_own_jobs(api: Api) -> None:
    r = _submit(api, b"listing_id,image\nL1,a.jpg\n", ("a.jpg", jpeg_bytes(textured_object(1))))
    assert r.status_code == 202, r.text
    job = _wait_job(api, r.json()["id"])
    assert job["manifest"] == "l.csv"  # a name, not where the server keeps it
    other = _other_analyst(api)
    assert api.client.get("/api/v1/jobs", headers=other).json() == []
    assert [j["id"] for j in api.as_(AN, "GET", "/api/v1/jobs").json()] == [job["id"]]
    for url in (f"/api/v1/jobs/{job['id']}", job["report_csv_url"], job["report_json_url"]):
        _error(api.client.get(url, headers=other), 404, "not_found")
    assert api.client.get(f"/jobs/{job['id']}", headers=other).status_code == 404
    # The admin oversees every job, read-only (submitting stays the analysts').
    assert [j["id"] for j in api.as_("admin", "GET", "/api/v1/jobs").json()] == [job["id"]]
    assert api.as_("admin", "GET", job["report_csv_url"]).status_code == 200


def test_odd_manifests_and_photo_sets_are_a_4xx(api: Api, tmp_path: Path) -> None:
    photo = jpeg_bytes(textured_object(1))
    cases = {
        "two uploaded photos are named 'a.jpg'": _submit(
            api, b"listing_id,image\nL1,a.jpg\n", ("a.jpg", photo), ("x/a.jpg", photo)
        ),
        "names a photo that was not uploaded": _submit(
            api, b"listing_id,image\nL1,a.jpg\nL2,b.jpg\n", ("a.jpg", photo)
        ),
        "two image paths with one file name": _submit(
            api, b"listing_id,image\nL1,x/a.jpg\nL2,y/a.jpg\n", ("a.jpg", photo)
        ),
        "must be relative": _submit(api, b"listing_id,image\nL1,/etc/passwd\n", ("passwd", photo)),
        "JSON nested too deeply": _submit(
            api, b'{"listing_id": "L1", "image": ' + b"[" * 50_000 + b"}\n", name="d.jsonl"
        ),
        "a field is longer than 131,072 characters": _submit(
            api, b"listing_id,image\nL1," + b"x" * 140_000 + b"\n"
        ),
        "not a readable manifest file": api.as_(
            AN, "POST", "/api/v1/jobs", data={"manifest_path": str(tmp_path / "shared")}
        ),
    }
    for expected, r in cases.items():
        message = _error(r, 422, "invalid_input")
        assert expected in message, (expected, message)
        assert str(tmp_path) not in message
    # A refused upload leaves nothing behind.
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    assert not runtime.manifests_dir.exists() or not any(runtime.manifests_dir.iterdir())
