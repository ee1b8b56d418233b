"""Issue 12: the batch-check page holds up. Errors show while the job runs, the hit count is
the table's, and each hit row has both photos, the confidence in percent and the evidence."""

from __future__ import annotations

import re
import threading
import time

from ingest import listings
from tests.service.conftest import PASSWORD, Api
from tests.utils.images import jpeg_bytes, photographed, textured_object

REG, AN = "reg_a", "analyst"


def _catalogue(api: Api) -> None:
    for i in range(3):
        r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": f"A-{i}", "title": f"T{i}"})
        assert r.status_code == 201, r.text
        files = [("files", ("p.jpg", jpeg_bytes(textured_object(i)), "image/jpeg"))]
        assert api.as_(REG, "POST", f"/api/v1/objects/A-{i}/photos", files=files).status_code == 201
    for i in (1, 2):
        api.as_(REG, "POST", f"/api/v1/objects/A-{i}/status", json={"status": "stolen"})


def _submit(api: Api, manifest: str, images: dict[str, bytes]) -> str:
    files = [("manifest", ("listings.csv", manifest.encode(), "text/csv"))] + [
        ("images", (name, data, "image/jpeg")) for name, data in images.items()
    ]
    r = api.as_(AN, "POST", "/api/v1/jobs", files=files)
    assert r.status_code == 202, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def _wait(api: Api, job_id: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = api.as_(AN, "GET", f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def _login(api: Api, who: str) -> None:
    r = api.client.post("/login", data={"username": who, "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_the_hit_count_is_the_tables_and_rows_show_photos_confidence_evidence(
    api: Api,
) -> None:
    _catalogue(api)
    # One listing showing two stolen objects side by side: two rows, one listing with a hit.
    both = photographed(textured_object(1), 3)
    manifest = "listing_id,image,title\nL1,one.jpg,Pair\nL2,two.jpg,Other\nL3,gone.jpg,Lost\n"
    job_id = _submit(
        api,
        manifest,
        {
            "one.jpg": jpeg_bytes(both),
            "two.jpg": jpeg_bytes(textured_object(77)),
            "gone.jpg": b"\xff\xd8\xff broken",
        },
    )
    job = _wait(api, job_id)
    assert job["status"] == "succeeded", job
    report = api.as_(AN, "GET", job["report_json_url"]).json()
    _login(api, AN)
    page = api.client.get(f"/jobs/{job_id}").text
    rows = page.count('class="hit-row"')
    assert rows == len(report["hits"]) >= 1
    assert f'id="job-hit-count">({rows})' in page
    # the failed listing is listed
    assert "listing L3" in page
    # each row: both thumbnails, a percentage, an evidence link
    assert page.count('class="thumb"') == 2 * rows
    assert re.search(r'class="confidence">(&gt;)?\d+\s?%<', page)
    links = re.findall(r'class="evidence-link" href="([^"]+)"', page)
    assert len(links) == rows
    thumbs = re.findall(r'<img class="thumb" src="([^"]+)"', page)
    for url in thumbs:
        r = api.client.get(url.replace("&amp;", "&"))
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8", url
    evidence = api.client.get(links[0].replace("&amp;", "&"))
    assert evidence.status_code == 200 and evidence.content[:4] == b"\x89PNG"


def test_listing_photos_and_evidence_are_the_jobs_owners_only(api: Api) -> None:
    _catalogue(api)
    job_id = _submit(
        api,
        "listing_id,image\nL1,one.jpg\n",
        {"one.jpg": jpeg_bytes(photographed(textured_object(1), 3))},
    )
    assert _wait(api, job_id)["status"] == "succeeded"
    url = f"/api/v1/jobs/{job_id}/listing-photo"
    assert api.as_(AN, "GET", url, params={"image": "one.jpg"}).status_code == 200
    # a file of the folder that is no hit's photo, and a way out of the folder: not found
    assert api.as_(AN, "GET", url, params={"image": "listings.csv"}).status_code == 404
    assert api.as_(AN, "GET", url, params={"image": "../x.jpg"}).status_code == 404
    # another analyst: the job does not exist for them
    accounts = api.client.app.state.runtime.accounts  # type: ignore[attr-defined]
    from kernel.enums import Role
    from service.security import new_token
    from tests.service.conftest import password_hash

    other = accounts.create_account(
        username="an2", password_hash=password_hash(), role=Role.ANALYST, institution=None
    )
    token, digest = new_token()
    accounts.add_token(account_id=other.id, name="t", token_sha256=digest)
    api.tokens["an2"] = token
    assert api.as_("an2", "GET", url, params={"image": "one.jpg"}).status_code == 404
    evidence = f"/api/v1/jobs/{job_id}/evidence"
    params = {"image": "one.jpg", "object_id": "A-1"}
    assert api.as_("an2", "GET", evidence, params=params).status_code == 404
    assert api.as_(AN, "GET", evidence, params=params).status_code == 200
    assert api.as_(AN, "GET", evidence, params=params | {"object_id": "A-2"}).status_code == 404


def test_errors_show_while_the_job_runs(api: Api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _catalogue(api)
    release = threading.Event()
    real = listings.read_listing_photo

    def slow(base, name, *, max_bytes):  # type: ignore[no-untyped-def]
        if name == "late.jpg":
            assert release.wait(20)
        return real(base, name, max_bytes=max_bytes)

    monkeypatch.setattr(listings, "read_listing_photo", slow)
    manifest = "listing_id,image\nL1,bad.jpg\nL2,late.jpg\n"
    job_id = _submit(
        api,
        manifest,
        {"bad.jpg": b"\xff\xd8\xff broken", "late.jpg": jpeg_bytes(textured_object(50))},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job = api.as_(AN, "GET", f"/api/v1/jobs/{job_id}").json()
            if job["errors"]:
                break
            time.sleep(0.05)
        assert job["status"] == "running" and job["errors"][0].startswith("listing L1")
        _login(api, AN)
        assert "listing L1" in api.client.get(f"/jobs/{job_id}").text
    finally:
        release.set()
    assert _wait(api, job_id)["status"] == "succeeded"


def test_a_resubmitted_manifest_shows_the_same_count_on_the_list_and_the_page(api: Api) -> None:
    _catalogue(api)
    images = {"one.jpg": jpeg_bytes(photographed(textured_object(1), 3))}
    first = _submit(api, "listing_id,image\nL1,one.jpg\n", images)
    assert _wait(api, first)["hits"] == 1
    again = _submit(api, "listing_id,image\nL1,one.jpg\n", images)
    job = _wait(api, again)
    # the listing was checked before: this run skipped it, its stored hit is still reported
    assert job["skipped"] == 1 and job["hits"] == 0
    _login(api, AN)
    page = api.client.get(f"/jobs/{again}").text
    rows = page.count('class="hit-row"')
    assert rows == 1 and 'id="job-hit-count">(1)' in page and "1 hit · 1 listing<" in page
    listing = api.client.get("/jobs").text
    assert listing.count('<td class="hit-count">1</td>') == 2
