"""Batch jobs queued by the service and run by a separate `artmatch worker`."""

from __future__ import annotations

import pytest

from kernel.settings import WebSettings
from service.worker import run_worker
from tests.service.test_api import AN, REG, _object, _upload
from tests.utils.images import jpeg_bytes, photographed, textured_object


@pytest.fixture
def web_settings() -> WebSettings:
    return WebSettings(max_request_bytes=3 * 1024 * 1024, job_workers=0)


def test_worker_runs_the_jobs_the_service_queues(api, settings) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        _object(api, f"A-{i}", title=f"Object {i}")
        _upload(api, f"A-{i}", jpeg_bytes(textured_object(i)))
    api.as_(REG, "POST", "/api/v1/objects/A-2/status", json={"status": "stolen"})
    manifest = "listing_id,image\nL1,one.jpg\n"
    files = [
        ("manifest", ("listings.csv", manifest.encode(), "text/csv")),
        ("images", ("one.jpg", jpeg_bytes(photographed(textured_object(2), 3)), "image/jpeg")),
    ]
    job_id = api.as_(AN, "POST", "/api/v1/jobs", files=files).json()["id"]
    assert api.as_(AN, "GET", f"/api/v1/jobs/{job_id}").json()["status"] == "queued"

    runtime = api.client.app.state.runtime
    seen: list[str] = []
    ran = run_worker(
        runtime.settings, once=True, services=runtime.require_services(), on_job=seen.append
    )
    assert ran == 1 and seen == [job_id]
    job = api.as_(AN, "GET", f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["hits"] == 1
    assert run_worker(runtime.settings, once=True, services=runtime.require_services()) == 0
