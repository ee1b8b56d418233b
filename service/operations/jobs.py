"""Batch listing checks (analysts): keep the manifest a job reads (uploaded, or one already on
the server under an allowed root), queue the job, and report on it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from ingest.listings import read_manifest
from kernel.enums import JobStatus
from kernel.errors import InvalidInput, NotFound
from service.deps import Principal
from service.operations.links import job_report_url
from service.runtime import Runtime
from service.schemas import JobPublic
from storage.catalogue.jobs import JobRecord

__all__ = [
    "get_job",
    "job_public",
    "list_jobs",
    "report_path",
    "save_uploaded_manifest",
    "server_manifest",
    "submit_job",
]


def job_public(job: JobRecord) -> JobPublic:
    done = job.status is JobStatus.SUCCEEDED
    return JobPublic(
        **{k: getattr(job, k) for k in JobPublic.model_fields if hasattr(job, k)},
        report_csv_url=job_report_url(job.id, "csv") if done and job.report_csv else None,
        report_json_url=job_report_url(job.id, "json") if done and job.report_json else None,
    )


def list_jobs(rt: Runtime) -> list[JobPublic]:
    return [job_public(j) for j in rt.jobs.list_jobs()]


def get_job(rt: Runtime, job_id: str) -> JobPublic:
    return job_public(rt.jobs.get_job(job_id))


def report_path(rt: Runtime, job_id: str, kind: Literal["csv", "json"]) -> Path:
    """The file of a finished job's report (404 while there is none)."""
    job = rt.jobs.get_job(job_id)
    path = job.report_csv if kind == "csv" else job.report_json
    if not path or not Path(path).is_file():
        raise NotFound(f"job {job_id} has no report (yet): it is {job.status.value}")
    return Path(path)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_relpath(root: Path, name: str) -> Path:
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise InvalidInput(f"{name!r}: image paths in an uploaded manifest must be relative")
    return root.joinpath(*rel.parts)


def save_uploaded_manifest(
    rt: Runtime, job_id: str, manifest: tuple[str, bytes], images: Sequence[tuple[str, bytes]]
) -> Path:
    """Keep an uploaded manifest and its images in ``<home>/manifests/<job id>/``."""
    name, data = manifest
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise InvalidInput(f"{name}: a manifest is a .csv or .jsonl file")
    root = rt.manifests_dir / job_id
    root.mkdir(parents=True, exist_ok=True)
    path = root / (_SAFE_NAME.sub("_", Path(name).stem)[:80] + suffix)
    path.write_bytes(data)
    listings = read_manifest(path)
    if images:
        # A browser sends bare file names; place each where the manifest expects it.
        wanted: dict[str, list[str]] = {}
        for listing in listings:
            wanted.setdefault(PurePosixPath(listing.image.replace("\\", "/")).name, []).append(
                listing.image
            )
        for image_name, image_data in images:
            for rel in wanted.get(PurePosixPath(image_name.replace("\\", "/")).name, []):
                target = _safe_relpath(root, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(image_data)
    return path


def server_manifest(rt: Runtime, manifest_path: str) -> Path:
    path = Path(manifest_path).expanduser().resolve()
    roots = [r.expanduser().resolve() for r in [*rt.web.manifest_roots, rt.manifests_dir]]
    if not any(path.is_relative_to(root) for root in roots):
        raise InvalidInput(
            f"{manifest_path}: not under a directory the service may read "
            f"({', '.join(str(r) for r in roots)}; set ARTMATCH_WEB_MANIFEST_ROOTS)"
        )
    read_manifest(path)
    return path


def submit_job(
    rt: Runtime,
    principal: Principal,
    *,
    manifest_path: str | None,
    upload: tuple[str, bytes] | None,
    images: Sequence[tuple[str, bytes]],
    recheck: bool,
) -> JobPublic:
    rt.require_services()
    job_id = uuid.uuid4().hex
    if upload is not None:
        path = save_uploaded_manifest(rt, job_id, upload, images)
    elif manifest_path:
        path = server_manifest(rt, manifest_path)
    else:
        raise InvalidInput("send a manifest file, or the path of one on the server")
    total = len(read_manifest(path))
    job = rt.jobs.create_job(
        job_id=job_id, account=principal.account, manifest=str(path), recheck=recheck, total=total
    )
    if rt.job_runner is not None:
        rt.job_runner.submit(job_id, path, recheck=recheck)
    # else: queued in the database for an `artmatch worker` process
    return job_public(job)
