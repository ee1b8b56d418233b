"""Batch jobs queued by the service and run by a separate `artmatch worker`."""

from __future__ import annotations

import pytest

from kernel.enums import JobStatus
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


def test_a_worker_starting_leaves_a_live_job_alone(api, settings) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from service.jobs import STOPPED_MESSAGE, JobRunner

    runtime = api.client.app.state.runtime
    account = runtime.accounts.by_username(AN)
    for job_id in ("live", "dead"):
        runtime.jobs.create_job(
            job_id=job_id, account=account, manifest="m.csv", recheck=False, total=3
        )
        assert runtime.jobs.claim_job(job_id, owner="service-1")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61)
    runtime.jobs.update_job("dead", heartbeat_at=long_ago)
    # `artmatch worker` starts (and stops) beside the service that runs "live".
    assert run_worker(runtime.settings, once=True, services=runtime.require_services()) == 0
    assert runtime.jobs.get_job("live").status.value == "running"
    dead = runtime.jobs.get_job("dead")
    assert dead.status.value == "failed" and dead.message == STOPPED_MESSAGE
    # The heartbeat keeps a running job's lease alive.
    runner = JobRunner(
        jobs=runtime.jobs, services=runtime.require_services, reports_dir=runtime.reports_dir
    )
    runtime.jobs.renew_leases(["live"], owner="service-1")
    assert runner.recover() == 0
    runner.shutdown()
    assert runtime.jobs.get_job("live").status.value == "running"


def test_prune_uploads_deletes_old_manifests_of_finished_jobs(api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from service.jobs import prune_uploads

    runtime = api.client.app.state.runtime
    account = runtime.accounts.by_username(AN)
    now = dt.datetime.now(dt.UTC)
    for job_id, finished in (("old", now - dt.timedelta(days=91)), ("new", now)):
        runtime.jobs.create_job(
            job_id=job_id, account=account, manifest="m.csv", recheck=False, total=1
        )
        runtime.jobs.update_job(job_id, status=JobStatus.SUCCEEDED, finished_at=finished)
        (runtime.manifests_dir / job_id).mkdir(parents=True)
        (runtime.manifests_dir / job_id / "m.csv").write_text("listing_id,image\n")
    runtime.jobs.create_job(
        job_id="queued", account=account, manifest="m.csv", recheck=False, total=1
    )
    (runtime.manifests_dir / "queued").mkdir()
    assert prune_uploads(runtime.jobs, runtime.manifests_dir, days=90) == ["old"]
    assert sorted(p.name for p in runtime.manifests_dir.iterdir()) == ["new", "queued"]
    assert runtime.jobs.get_job("old").status is JobStatus.SUCCEEDED  # the job itself stays


def _queue(api, listing: str, image: bytes) -> str:  # type: ignore[no-untyped-def]
    files = [
        ("manifest", ("listings.csv", f"listing_id,image\n{listing},p.jpg\n".encode(), "text/csv")),
        ("images", ("p.jpg", image, "image/jpeg")),
    ]
    return str(api.as_(AN, "POST", "/api/v1/jobs", files=files).json()["id"])


def test_worker_keeps_its_services_between_jobs_and_catches_up(  # type: ignore[no-untyped-def]
    api, monkeypatch
) -> None:
    """The worker opens its model and indexes once; a theft reported (with a new photo)
    through the service between two jobs is found by the second job all the same."""
    import engine.services
    import service.worker

    for i in range(2):
        _object(api, f"A-{i}", title=f"Object {i}")
        _upload(api, f"A-{i}", jpeg_bytes(textured_object(i)))
    api.as_(REG, "POST", "/api/v1/objects/A-1/status", json={"status": "stolen"})
    first = _queue(api, "L1", jpeg_bytes(photographed(textured_object(1), 3)))
    second = _queue(api, "L2", jpeg_bytes(photographed(textured_object(5), 3)))

    opened: list[int] = []
    real_build, real_open = service.worker.build_services, engine.services.open_index

    def build(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(1)
        return real_build(*args, **kwargs)

    def open_index(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(2)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(service.worker, "build_services", build)
    monkeypatch.setattr(engine.services, "open_index", open_index)

    def between(job_id: str) -> None:
        if job_id == first:  # the service adds and reports an object meanwhile
            _object(api, "A-5", title="Object 5")
            _upload(api, "A-5", jpeg_bytes(textured_object(5)))
            api.as_(REG, "POST", "/api/v1/objects/A-5/status", json={"status": "stolen"})

    runtime = api.client.app.state.runtime
    assert run_worker(runtime.settings, once=True, on_job=between) == 2
    assert opened == [1, 2]  # built (and its index opened) once, for both jobs
    for job_id in (first, second):
        assert api.as_(AN, "GET", f"/api/v1/jobs/{job_id}").json()["hits"] == 1
