"""The API through the real app: catalogue, uploads, search, batch jobs, and bad input."""

from __future__ import annotations

import io
import time

from PIL import Image

from tests.service.conftest import PASSWORD, Api
from tests.utils.images import jpeg_bytes, photographed, png_bytes, textured_object

REG, INV, AN = "reg_a", "inv", "analyst"


def _object(api: Api, object_id: str = "A-1", **fields: str) -> None:
    r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": object_id, **fields})
    assert r.status_code == 201, r.text


def _upload(api: Api, object_id: str, *images: bytes, view: str = "front"):  # type: ignore[no-untyped-def]
    files = [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return api.as_(
        REG, "POST", f"/api/v1/objects/{object_id}/photos", files=files, data={"view": view}
    )


def _error(r, status: int, code: str | None = None) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["message"]
    if code:
        assert body["error"] == code
    return body["message"]


def test_catalogue_crud_and_filters(api: Api) -> None:
    _object(api, "A-1", title="Madonna", maker="Giotto", object_type="painting")
    _object(api, "A-2", title="Bowl", inscriptions_markings="signed VERMEER", object_type="vessel")
    r = _upload(api, "A-1", jpeg_bytes(textured_object(1)), jpeg_bytes(textured_object(2)))
    assert [o["outcome"] for o in r.json()] == ["added", "added"]
    photo = r.json()[0]["photo"]
    assert photo["thumbnail_url"].endswith("/thumbnail") and photo["image_url"].endswith("/image")
    assert api.as_(INV, "GET", photo["image_url"]).content[:2] == b"\xff\xd8"

    r = api.as_(
        REG,
        "POST",
        "/api/v1/objects/A-2/status",
        json={"status": "stolen", "date": "2024-03-01", "reference": "POL-1"},
    )
    assert r.json()["loss_reference"] == "POL-1"

    def ids(**params: str) -> list[str]:
        r = api.as_(INV, "GET", "/api/v1/objects", params=params)
        assert r.status_code == 200, r.text
        return sorted(o["object_id"] for o in r.json()["items"])

    assert ids() == ["A-1", "A-2"]
    assert ids(status="stolen") == ["A-2"]
    assert ids(q="vermeer") == ["A-2"]
    assert ids(q="giotto") == ["A-1"]
    assert ids(object_type="Painting") == ["A-1"]
    assert ids(institution="Museum B") == []
    page = api.as_(INV, "GET", "/api/v1/objects", params={"page_size": 1, "page": 2}).json()
    assert page["total"] == 2 and len(page["items"]) == 1

    r = api.as_(REG, "PATCH", "/api/v1/objects/A-1", json={"title": "Madonna and Child"})
    assert r.json()["title"] == "Madonna and Child"
    detail = api.as_(INV, "GET", "/api/v1/objects/A-1").json()
    assert detail["photo_count"] == 2 and len(detail["photos"]) == 2
    assert api.as_(INV, "GET", "/api/v1/objects/A-2").json()["history"][0]["reference"] == "POL-1"

    assert api.as_(REG, "DELETE", f"/api/v1/photos/{photo['id']}").status_code == 200
    assert api.as_(INV, "GET", f"/api/v1/photos/{photo['id']}").status_code == 404
    assert api.as_(REG, "DELETE", "/api/v1/objects/A-1").status_code == 200
    assert ids() == ["A-2"]
    assert api.client.get("/api/v1/ready").json()["indexed_photos"] == 0


def test_search_ranks_the_object_and_is_logged(api: Api) -> None:
    for i in range(4):
        _object(api, f"A-{i}", title=f"Object {i}")
        _upload(api, f"A-{i}", jpeg_bytes(textured_object(i)))
    api.as_(REG, "POST", "/api/v1/objects/A-2/status", json={"status": "stolen"})
    query = jpeg_bytes(photographed(textured_object(2), seed=5))
    r = api.as_(
        INV,
        "POST",
        "/api/v1/searches",
        files={"file": ("q.jpg", query, "image/jpeg")},
        data={"case_reference": "CASE-9", "status": ["stolen", "missing"]},
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["hits"][0]["object_id"] == "A-2" and result["hits"][0]["is_match"]
    assert 0 < result["threshold"] <= 1
    assert result["hits"][0]["thumbnail_url"].startswith("/api/v1/photos/")
    assert [h["object_id"] for h in result["hits"]] == ["A-2"]  # status filter applied
    log = api.as_("auditor", "GET", "/api/v1/searches").json()
    assert log["total"] == 1
    entry = log["items"][0]
    assert entry["username"] == INV and entry["case_reference"] == "CASE-9"
    assert entry["query_sha256"] == result["query_sha256"] and entry["top_object_id"] == "A-2"

    # the evidence picture of the verified match
    best = result["hits"][0]
    assert best["verified"] and best["evidence_url"].endswith(f"/{best['photo_id']}.png")
    png = api.as_(INV, "GET", best["evidence_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    missing = api.as_(INV, "GET", f"/api/v1/searches/{result['search_id'] + 99}/evidence/1.png")
    assert missing.status_code == 404


def test_duplicate_photo_returns_existing(api: Api) -> None:
    _object(api)
    data = jpeg_bytes(textured_object(1))
    first = _upload(api, "A-1", data).json()[0]
    again = _upload(api, "A-1", data).json()[0]
    assert again["outcome"] == "duplicate"
    assert again["photo"]["id"] == first["photo"]["id"]
    assert api.as_(INV, "GET", "/api/v1/objects/A-1").json()["photo_count"] == 1
    assert api.client.get("/api/v1/ready").json()["indexed_photos"] == 1


def test_upload_warns_of_a_photo_of_another_object(api: Api) -> None:
    painting = textured_object(3)
    w, h = painting.size
    second_session = jpeg_bytes(painting.crop((4, 4, w - 4, h - 4)).rotate(2))
    _object(api, "A-1")
    first = _upload(api, "A-1", jpeg_bytes(painting)).json()[0]
    assert first["possible_duplicates"] == [] and first["message"] == ""
    _object(api, "A-2")
    [second] = _upload(api, "A-2", second_session).json()
    assert second["outcome"] == "added" and second["photo"] is not None
    [dup] = second["possible_duplicates"]
    assert dup["object_id"] == "A-1" and dup["photo_id"] == first["photo"]["id"]
    assert dup["inliers"] >= 12
    assert "verifies against object A-1's photo" in second["message"]
    # A registrar of another institution is not told about Museum A's objects.
    r = api.as_("reg_b", "POST", "/api/v1/objects", json={"object_id": "B-1"})
    assert r.status_code == 201, r.text
    files = [("files", ("b.jpg", jpeg_bytes(painting.rotate(-2)), "image/jpeg"))]
    [other] = api.as_("reg_b", "POST", "/api/v1/objects/B-1/photos", files=files).json()
    assert other["outcome"] == "added"
    assert other["possible_duplicates"] == [] and other["message"] == ""


def test_bad_uploads(api: Api) -> None:
    _object(api)
    # Wrong content type.
    r = api.as_(
        REG,
        "POST",
        "/api/v1/objects/A-1/photos",
        files={"files": ("notes.txt", b"hello", "text/plain")},
    )
    _error(r, 415, "unsupported_media_type")
    # Undecodable bytes labelled as a JPEG.
    r = _upload(api, "A-1", b"\xff\xd8 this is not a jpeg")
    assert "image" in _error(r, 422, "invalid_image")
    # Empty file.
    r = _upload(api, "A-1", b"")
    _error(r, 422, "invalid_image")
    # Decompression bomb: tiny file, 400 megapixels.
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, "PNG")
    r = api.as_(
        REG,
        "POST",
        "/api/v1/objects/A-1/photos",
        files={"files": ("bomb.png", buf.getvalue(), "image/png")},
    )
    assert "too large" in _error(r, 422, "invalid_image")
    # Over the per-file limit (2 MiB in these tests) but under the request limit.
    big = b"\xff\xd8" + b"\0" * (2 * 1024 * 1024 + 10)
    _error(_upload(api, "A-1", big), 413, "payload_too_large")
    # Over the request limit (3 MiB): refused before the body is read.
    huge = b"\0" * (4 * 1024 * 1024)
    _error(_upload(api, "A-1", huge), 413, "payload_too_large")
    # One good file among bad ones: the good one is stored, the bad one reported.
    r = _upload(api, "A-1", png_bytes(textured_object(3)), b"garbage")
    assert [o["outcome"] for o in r.json()] == ["added", "error"]
    # Nothing of the bad uploads was stored.
    assert api.as_(INV, "GET", "/api/v1/objects/A-1").json()["photo_count"] == 1


def test_bad_requests(api: Api) -> None:
    _error(api.as_(INV, "GET", "/api/v1/objects/nope"), 404, "not_found")
    _error(api.as_(INV, "GET", "/api/v1/photos/12345/image"), 404, "not_found")
    _error(api.as_(AN, "GET", "/api/v1/jobs/nope"), 404, "not_found")
    _error(_upload(api, "nope", jpeg_bytes(textured_object(1))), 404, "not_found")
    r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": "a/b"})
    assert "object_id" in _error(r, 422, "invalid_request")
    r = api.client.post(
        "/api/v1/objects",
        content=b"{not json",
        headers={"Content-Type": "application/json"} | api.headers(REG),
    )
    _error(r, 422)
    _object(api)
    _error(api.as_(REG, "POST", "/api/v1/objects", json={"object_id": "A-1"}), 409, "conflict")
    r = api.as_(REG, "POST", "/api/v1/objects/A-1/status", json={"status": "vanished"})
    _error(r, 422, "invalid_request")
    r = api.as_(INV, "POST", "/api/v1/searches", files={"file": ("q.jpg", b"nope", "image/jpeg")})
    _error(r, 422, "invalid_image")
    _error(api.as_(INV, "POST", "/api/v1/searches"), 422, "invalid_request")


def _wait_job(api: Api, job_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = api.as_(AN, "GET", f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_batch_job_upload_poll_report(api: Api) -> None:
    for i in range(3):
        _object(api, f"A-{i}", title=f"Object {i}")
        _upload(api, f"A-{i}", jpeg_bytes(textured_object(i)))
    api.as_(REG, "POST", "/api/v1/objects/A-1/status", json={"status": "stolen"})
    manifest = "listing_id,image,title\nL1,img/one.jpg,Nice thing\nL2,two.jpg,Other\n"
    files = [
        ("manifest", ("listings.csv", manifest.encode(), "text/csv")),
        ("images", ("one.jpg", jpeg_bytes(photographed(textured_object(1), 3)), "image/jpeg")),
        ("images", ("two.jpg", jpeg_bytes(textured_object(77)), "image/jpeg")),
    ]
    r = api.as_(AN, "POST", "/api/v1/jobs", files=files)
    assert r.status_code == 202, r.text
    job = _wait_job(api, r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["total"] == 2 and job["done"] == 2 and job["hits"] == 1
    csv = api.as_(AN, "GET", job["report_csv_url"]).text
    assert "L1,A-1" in csv and "L2" not in csv
    report = api.as_(AN, "GET", job["report_json_url"]).json()
    assert [h["listing_id"] for h in report["hits"]] == ["L1"]


def test_malformed_manifest_names_the_line(api: Api) -> None:
    manifest = b"listing_id,image\nL1,a.jpg\nL2,\n"
    r = api.as_(AN, "POST", "/api/v1/jobs", files={"manifest": ("bad.csv", manifest, "text/csv")})
    assert "bad.csv:3" in _error(r, 422, "invalid_input")
    r = api.as_(
        AN, "POST", "/api/v1/jobs", files={"manifest": ("x.jsonl", b'{"a":\n', "text/plain")}
    )
    assert "x.jsonl:1" in _error(r, 422, "invalid_input")
    r = api.as_(AN, "POST", "/api/v1/jobs", data={"manifest_path": "/etc/passwd"})
    assert "not under a directory" in _error(r, 422, "invalid_input")
    _error(api.as_(AN, "POST", "/api/v1/jobs"), 422, "invalid_input")
    r = api.as_(
        AN,
        "POST",
        "/api/v1/jobs",
        files={"manifest": ("x.png", png_bytes(textured_object(1)), "image/png")},
    )
    _error(r, 415, "unsupported_media_type")


def test_unfinished_jobs_are_marked_failed_on_start(api: Api, settings) -> None:  # type: ignore[no-untyped-def]
    from service.jobs import STOPPED_MESSAGE, JobRunner

    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    account = runtime.accounts.by_username(AN)
    runtime.jobs.create_job(job_id="j1", account=account, manifest="m.csv", recheck=False, total=3)
    runner = JobRunner(
        jobs=runtime.jobs,
        services=runtime.require_services,
        reports_dir=runtime.reports_dir,
    )
    assert api.as_(AN, "GET", "/api/v1/jobs/j1").json()["status"] == "queued"  # built: no writes
    assert runner.recover() == 1
    job = api.as_(AN, "GET", "/api/v1/jobs/j1").json()
    assert job["status"] == "failed" and job["message"] == STOPPED_MESSAGE
    runner.shutdown()
    job = api.as_(AN, "GET", "/api/v1/jobs/j1").json()
    assert job["status"] == "failed" and job["message"] == STOPPED_MESSAGE


def test_session_login_needs_csrf_for_writes(api: Api) -> None:
    r = api.client.post("/login", data={"username": REG, "password": "wrong password"})
    assert r.status_code == 401
    r = api.client.post(
        "/login", data={"username": REG, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303
    assert api.client.get("/api/v1/me").json()["username"] == REG
    r = api.client.post("/api/v1/objects", json={"object_id": "S-1"})
    _error(r, 403, "forbidden")
    page = api.client.get("/upload").text
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    r = api.client.post(
        "/api/v1/objects", json={"object_id": "S-1"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201, r.text
    api.client.post("/logout", data={"csrf_token": csrf})
    assert api.client.get("/api/v1/me").status_code == 401


def test_api_tokens_and_accounts(api: Api) -> None:
    r = api.as_(
        "admin",
        "POST",
        "/api/v1/accounts",
        json={"username": "reg_c", "password": "long enough pw", "role": "registrar"},
    )
    assert "institution" in _error(r, 422)
    r = api.as_(
        "admin",
        "POST",
        "/api/v1/accounts",
        json={
            "username": "reg_c",
            "password": "long enough pw",
            "role": "registrar",
            "institution": "Museum C",
            "create_institution": True,
        },
    )
    assert r.status_code == 201
    r = api.as_(
        "admin", "POST", f"/api/v1/accounts/{r.json()['id']}/tokens", json={"name": "import script"}
    )
    token = r.json()["token"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["institution"] == "Museum C"
    assert api.as_("admin", "GET", "/api/v1/institutions").json()[-1]["name"] == "Museum C"
