"""A batch job of the service on a Dask LocalCluster: progress as chunks are committed, the
report, and the alerts handed to the webhooks, as in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel.enums import JobStatus
from kernel.settings import BatchSettings, Settings
from service.jobs import JobRunner
from tests.service.test_api import AN, REG, _object, _upload
from tests.utils.images import jpeg_bytes, photographed, textured_object


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every job on the cluster, however small; one worker keeps the test light.
    return settings.model_copy(
        update={"batch": BatchSettings(scheduler="local", workers=1, chunk_size=2, min_listings=0)}
    )


@pytest.mark.integration
def test_a_job_runs_on_the_cluster_with_progress_and_alerts(  # type: ignore[no-untyped-def]
    api, tmp_path: Path, monkeypatch
) -> None:
    import ingest.batch.cluster as cluster

    for i in range(3):
        _object(api, f"A-{i}", title=f"Object {i}")
        _upload(api, f"A-{i}", jpeg_bytes(textured_object(i)))
    api.as_(REG, "POST", "/api/v1/objects/A-2/status", json={"status": "stolen"})
    folder = tmp_path / "lots"
    folder.mkdir()
    rows = []
    for i in range(5):
        seed = 2 if i in (1, 3) else 50 + i
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(photographed(textured_object(seed), i)))
        rows.append({"listing_id": f"L{i}", "image": f"{i}.jpg"})
    manifest = folder / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    runtime = api.client.app.state.runtime
    services = runtime.require_services()
    services.save_index()  # workers load the index files, as another process would
    services.save_descriptors()
    runtime.jobs.create_job(
        job_id="j1",
        account=runtime.accounts.by_username(AN),
        manifest="m.jsonl",
        recheck=False,
        total=5,
    )
    progress: list[tuple[int, int]] = []
    update = runtime.jobs.update_job

    def spy(job_id: str, **fields: object) -> None:
        if "done" in fields:
            progress.append((fields["done"], fields["total"]))  # type: ignore[arg-type]
        update(job_id, **fields)

    monkeypatch.setattr(runtime.jobs, "update_job", spy)
    mapped: list[int] = []
    real_map = cluster.DaskMapper.map

    def counted(self, chunks):  # type: ignore[no-untyped-def]
        for outcomes in real_map(self, chunks):
            mapped.append(len(outcomes))
            yield outcomes

    monkeypatch.setattr(cluster.DaskMapper, "map", counted)
    alerts: list[object] = []
    runner = JobRunner(
        jobs=runtime.jobs,
        services=lambda: services,
        reports_dir=tmp_path / "reports",
        on_alerts=alerts.extend,
    )
    assert runtime.jobs.claim_job("j1", owner=runner.owner)
    runner.run("j1", manifest, recheck=False, source=None)
    runner.shutdown()

    job = runtime.jobs.get_job("j1")
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert (job.done, job.total, job.checked, job.hits) == (5, 5, 5, 2)
    assert sorted(mapped) == [1, 2, 2]  # three chunks, computed on the cluster
    assert progress[-1] == (5, 5)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert len(alerts) == 2
    report = json.loads(Path(job.report_json).read_text())  # type: ignore[arg-type]
    assert sorted(h["listing_id"] for h in report["hits"]) == ["L1", "L3"]
