"""Batch listing checks (analysts): keep the manifest a job reads (uploaded, or one already on
the server under an allowed root), queue the job, and report on it. A job is seen by its
author (and roles `service.policy` lets read every job); to anyone else it does not exist."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from ingest.listings import read_manifest, safe_relative
from kernel.enums import JobStatus
from kernel.errors import InvalidInput, NotFound
from service import policy
from service.deps import Principal
from service.jobs import listing_source
from service.operations.cases import cases_of, writable_case
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
    fields = {k: getattr(job, k) for k in JobPublic.model_fields if hasattr(job, k)}
    # The manifest's file name: where the server keeps it is none of the caller's business.
    fields["manifest"] = Path(job.manifest).name
    return JobPublic(
        **fields,
        report_csv_url=job_report_url(job.id, "csv") if done and job.report_csv else None,
        report_json_url=job_report_url(job.id, "json") if done and job.report_json else None,
    )


def _readable(principal: Principal, job: JobRecord) -> bool:
    return policy.may_read_job(
        principal.role, account_id=principal.account.id, owner_id=job.account_id
    )


def list_jobs(rt: Runtime, principal: Principal) -> list[JobPublic]:
    everyone = principal.may(policy.Action.READ_ALL_JOBS)
    jobs = rt.jobs.list_jobs(account_id=None if everyone else principal.account.id)
    return [job_public(j) for j in jobs if _readable(principal, j)]


def _job(rt: Runtime, principal: Principal, job_id: str) -> JobRecord:
    job = rt.jobs.get_job(job_id)
    if not _readable(principal, job):
        # The same answer as for an unknown id: another's job is not even confirmed.
        raise NotFound(f"no job {job_id!r}")
    return job


def get_job(rt: Runtime, principal: Principal, job_id: str) -> JobPublic:
    return job_public(_job(rt, principal, job_id))


def report_path(
    rt: Runtime, principal: Principal, job_id: str, kind: Literal["csv", "json"]
) -> Path:
    """The file of a finished job's report (404 while there is none)."""
    job = _job(rt, principal, job_id)
    path = job.report_csv if kind == "csv" else job.report_json
    if not path or not Path(path).is_file():
        raise NotFound(f"job {job_id} has no report (yet): it is {job.status.value}")
    return Path(path)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _bare(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).name


def _place_images(
    root: Path, manifest_name: str, images: Sequence[tuple[str, bytes]], wanted: list[str]
) -> None:
    """Put each uploaded photo where the manifest expects it. A browser sends bare file
    names, so a listing's photo is the upload of the same name; two uploads of one name, two
    listing paths sharing a name, or a listing naming a photo not uploaded are refused (the
    photo read would be a guess)."""
    uploaded: dict[str, bytes] = {}
    for name, data in images:
        bare = _bare(name)
        if bare in uploaded:
            raise InvalidInput(f"two uploaded photos are named {bare!r}; rename one")
        uploaded[bare] = data
    by_name: dict[str, str] = {}
    for rel in wanted:
        path = safe_relative(rel)
        if path is None:
            raise InvalidInput(f"{rel!r}: image paths in an uploaded manifest must be relative")
        bare = path.name
        if by_name.setdefault(bare, path.as_posix()) != path.as_posix():
            raise InvalidInput(
                f"{by_name[bare]!r} and {path.as_posix()!r}: two image paths with one file "
                "name; uploaded photos are matched by name, so names must differ"
            )
        if path.as_posix() == manifest_name:
            raise InvalidInput(f"{rel!r}: a listing photo cannot be the manifest itself")
        if bare not in uploaded:
            raise InvalidInput(f"{rel!r}: the manifest names a photo that was not uploaded")
    for bare, rel in by_name.items():
        target = root.joinpath(*PurePosixPath(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(uploaded[bare])


def save_uploaded_manifest(
    rt: Runtime, job_id: str, manifest: tuple[str, bytes], images: Sequence[tuple[str, bytes]]
) -> Path:
    """Keep an uploaded manifest and its images in ``<home>/manifests/<job id>/``; a listing
    reads only the photos uploaded with it. Nothing is kept of a refused upload."""
    name, data = manifest
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise InvalidInput(f"{_bare(name)}: a manifest is a .csv or .jsonl file")
    root = rt.manifests_dir / job_id
    root.mkdir(parents=True, exist_ok=True)
    try:
        path = root / (_SAFE_NAME.sub("_", Path(_bare(name)).stem)[:80] + suffix)
        path.write_bytes(data)
        listings = read_manifest(path)
        _place_images(root, path.name, images, [listing.image for listing in listings])
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return path


def server_manifest(rt: Runtime, manifest_path: str) -> Path:
    try:
        path = Path(manifest_path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        raise InvalidInput("not a manifest path the service can read") from None
    roots = [r.expanduser().resolve() for r in [*rt.web.manifest_roots, rt.manifests_dir]]
    if not any(path.is_relative_to(root) for root in roots):
        # Which directories are allowed is the operator's to say, not the error's.
        raise InvalidInput(
            f"{manifest_path}: not under a directory the service may read manifests from "
            "(the operator sets them with ARTMATCH_WEB_MANIFEST_ROOTS)"
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
    case_id: int | None = None,
) -> JobPublic:
    """Queue a check; with ``case_id`` it is attached to that case, which the caller must be
    allowed to change (checked before anything is kept)."""
    rt.require_services()
    if case_id is not None:
        writable_case(rt, principal, case_id)
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
    if case_id is not None:
        # Attached before the runner starts, so the case shows the check from its first poll.
        cases_of(rt).attach_job(case_id, job_id=job_id, actor=principal.account.username)
    if rt.job_runner is not None:
        source = listing_source(
            manifest=path, username=principal.account.username, uploads_dir=rt.manifests_dir
        )
        rt.job_runner.submit(job_id, path, recheck=recheck, source=source)
    # else: queued in the database for an `artmatch worker` process
    return job_public(job)
