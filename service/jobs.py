"""Batch listing checks run off the request path, in worker threads of this process.

Each job's listings are checked by `ingest.listings.check_listings`: on the Dask cluster that
``ARTMATCH_BATCH__SCHEDULER`` names (a local one by default), or in the job's thread when the
manifest is small. This thread alone writes the catalogue and moves the job's progress on as
chunks are committed.

A job's state lives in the database (`storage.catalogue.jobs.BatchJob`), so it outlives
the browser that started it. A runner claims a job atomically and holds a lease on it: a
heartbeat thread renews ``heartbeat_at`` while the job runs. If the process stops mid-job,
the job is marked failed (at shutdown; for a process that died, by the next ``recover`` once
the lease has run out), never silently lost, and never while another live process runs it;
the listings it already checked are committed and a re-submitted job skips them.
Building a runner touches nothing: whoever starts it (the app's lifespan, the worker) calls
``recover()`` first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from engine.services import Services
from ingest.listings import ListingRun, check_listings, write_report
from kernel.enums import JobStatus
from kernel.errors import ArtmatchError
from storage.catalogue.alerts import AlertRecord
from storage.catalogue.audit import AuditLog
from storage.catalogue.jobs import Jobs
from storage.catalogue.repository import Catalogue

__all__ = [
    "DEFAULT_LEASE_S",
    "STOPPED_MESSAGE",
    "JobRunner",
    "listing_source",
    "prune_uploads",
]

log = logging.getLogger(__name__)

STOPPED_MESSAGE = "the service stopped before the job finished; submit it again to resume"
#: Seconds without a heartbeat after which a running job counts as abandoned.
DEFAULT_LEASE_S = 60.0


class _ErrorTap:
    """The catalogue, handing each failed listing check also to ``on_error`` as it is
    stored (the same words `ListingRun.errors` keeps)."""

    def __init__(self, catalogue: Catalogue, on_error: Callable[[str], None]) -> None:
        self._catalogue = catalogue
        self._on_error = on_error

    def record_listing_check(self, check: dict[str, object]) -> None:
        self._catalogue.record_listing_check(check)
        if check.get("error"):
            self._on_error(f"listing {check['listing_id']}: {check['error']}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalogue, name)


def _tap_errors(services: Services, on_error: Callable[[str], None]) -> Services:
    return dataclasses.replace(
        services, catalogue=cast(Catalogue, _ErrorTap(services.catalogue, on_error))
    )


class _Stopped(Exception):
    pass


def listing_source(*, manifest: Path, username: str, uploads_dir: Path) -> str | None:
    """The source under which a job's listings are known (see `ingest.listings`): for an
    uploaded manifest, its uploader and file name (each upload lands in a folder of its own,
    so a path would make every re-submission new); for a manifest on the server, None (the
    file itself)."""
    if manifest.resolve().is_relative_to(uploads_dir.resolve()):
        return f"upload:{username}/{manifest.name}"
    return None


def prune_uploads(
    jobs: Jobs, uploads_dir: Path, *, days: int, now: dt.datetime | None = None
) -> list[str]:
    """Delete the uploaded manifests (with their photos) of jobs finished more than ``days``
    ago, and upload folders of no job at all that old; the jobs and their reports stay.
    Returns the names of the folders deleted."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=days)
    if not uploads_dir.is_dir():
        return []
    expired = set(jobs.finished_before(cutoff))
    known = jobs.job_ids()
    deleted = []
    for folder in sorted(uploads_dir.iterdir()):
        if folder.is_symlink() or not folder.is_dir():
            continue
        orphan = folder.name not in known and (
            dt.datetime.fromtimestamp(folder.stat().st_mtime, dt.UTC) < cutoff
        )
        if folder.name in expired or orphan:
            shutil.rmtree(folder)
            deleted.append(folder.name)
    return deleted


class JobRunner:
    def __init__(
        self,
        *,
        jobs: Jobs,
        services: Callable[[], Services],
        reports_dir: Path,
        workers: int = 1,
        stale: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING),
        lease_s: float = DEFAULT_LEASE_S,
        on_alerts: Callable[[Sequence[AlertRecord]], None] | None = None,
    ) -> None:
        """``stale``: statuses that, found at start, belong to a process that died (a
        running job only once its lease of ``lease_s`` seconds has run out). ``on_alerts``:
        given the alerts a finished job raised (the webhooks are posted there)."""
        self._on_alerts = on_alerts
        self._jobs = jobs
        self._services = services
        self._reports_dir = reports_dir
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="artmatch-job")
        self._stop = threading.Event()
        self._stale = stale
        self._lease = dt.timedelta(seconds=lease_s)
        #: Who holds the lease: unique per runner, readable in the table by an operator.
        self.owner = f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._active: set[str] = set()
        self._active_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None

    def recover(self) -> int:
        """Mark failed the jobs a previous process left unfinished (call once, at start,
        before submitting); returns how many. A running job whose lease is alive belongs to
        another process and is left alone."""
        failed = self._jobs.fail_unfinished_jobs(
            STOPPED_MESSAGE, statuses=self._stale, lease=self._lease, owner=self.owner
        )
        if failed:
            log.warning("%d job(s) of a previous run were marked failed", failed)
        return failed

    def submit(self, job_id: str, manifest: Path, *, recheck: bool, source: str | None) -> None:
        self._pool.submit(self._claim_and_run, job_id, manifest, recheck, source)

    def shutdown(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        # Only this runner's jobs (and, for the service, the queue it was given).
        self._jobs.fail_unfinished_jobs(
            STOPPED_MESSAGE,
            statuses=self._stale,
            lease=None,
            owner=self.owner,
        )
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)

    def run(self, job_id: str, manifest: Path, *, recheck: bool, source: str | None) -> None:
        """Run one job this runner has claimed, in the calling thread (the worker process)."""
        self._run(job_id, manifest, recheck, source)

    def _claim_and_run(
        self, job_id: str, manifest: Path, recheck: bool, source: str | None
    ) -> None:
        if not self._jobs.claim_job(job_id, owner=self.owner):
            return  # another runner (an `artmatch worker`) took it first
        self._run(job_id, manifest, recheck, source)

    def _beat(self) -> None:
        # A third of the lease: two heartbeats may be lost before the job counts as abandoned.
        interval = max(self._lease.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            with self._active_lock:
                active = sorted(self._active)
            try:
                self._jobs.renew_leases(active, owner=self.owner)
            except Exception:  # a database hiccup must not end the heartbeat
                log.exception("could not renew the job leases")

    def _start_heartbeat(self) -> None:
        with self._active_lock:
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(
                    target=self._beat, name="artmatch-job-heartbeat", daemon=True
                )
                self._heartbeat.start()

    def _run(self, job_id: str, manifest: Path, recheck: bool, source: str | None) -> None:
        now = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        self._start_heartbeat()
        with self._active_lock:
            self._active.add(job_id)
        try:
            self._run_claimed(job_id, manifest, recheck, source, now)
        finally:
            with self._active_lock:
                self._active.discard(job_id)

    def _run_claimed(
        self,
        job_id: str,
        manifest: Path,
        recheck: bool,
        source: str | None,
        now: Callable[[], dt.datetime],
    ) -> None:
        last = [0.0]
        errors: list[str] = []
        shown = [0]

        def progress(done: int, total: int) -> None:
            if self._stop.is_set():
                raise _Stopped
            # Commit progress at most a few times a second: pollers need no more.
            if done == total or time.monotonic() - last[0] > 0.3:
                last[0] = time.monotonic()
                fields: dict[str, object] = {}
                if len(errors) != shown[0]:
                    # The job page shows each failed listing while the job still runs.
                    shown[0] = len(errors)
                    fields["errors"] = errors[:200]
                self._jobs.update_job(job_id, done=done, total=total, **fields)

        try:
            services = _tap_errors(self._services(), errors.append)
            run = check_listings(
                services, manifest, source=source, recheck=recheck, on_progress=progress
            )
            csv_path, json_path = write_report(services, run, self._reports_dir / job_id / "hits")
        except _Stopped:
            self._jobs.update_job(
                job_id, status=JobStatus.FAILED, message=STOPPED_MESSAGE, finished_at=now()
            )
            self._audit(job_id, manifest, None, STOPPED_MESSAGE)
            return
        except Exception as exc:  # a job must end failed, whatever went wrong
            if isinstance(exc, ArtmatchError):
                message = str(exc)
            else:
                log.exception("job %s failed", job_id)
                message = "the job failed on an internal error (see the service log)"
            self._jobs.update_job(
                job_id, status=JobStatus.FAILED, message=message, finished_at=now()
            )
            self._audit(job_id, manifest, None, str(exc))
            return
        self._audit(job_id, manifest, run, None)
        if self._on_alerts is not None and run.new_alerts:
            try:
                self._on_alerts(run.new_alerts)
            except Exception:  # the alerts are stored and shown; only their posting failed
                log.exception("job %s: alerts not sent", job_id)
        self._jobs.update_job(
            job_id,
            status=JobStatus.SUCCEEDED,
            total=run.total,
            done=run.total,
            checked=run.checked,
            skipped=run.skipped,
            hits=run.hits,
            errors=run.errors[:200],
            report_csv=str(csv_path),
            report_json=str(json_path),
            finished_at=now(),
            message=f"{run.hits} hit(s) in {run.total} listing(s)",
        )

    def _audit(
        self, job_id: str, manifest: Path, run: ListingRun | None, error: str | None
    ) -> None:
        """One audit chain entry per job run: the analyst, the manifest (by hash) and what
        came of it; the checked photos themselves are in ``listing_checks``."""
        digest: str | None = None
        try:
            # Only a plain file of sane size: a FIFO or a device must not hang the runner.
            if manifest.is_file() and manifest.stat().st_size <= 256 * 1024 * 1024:
                digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
        except OSError:
            pass
        details: dict[str, object] = {"manifest": manifest.name, "manifest_sha256": digest}
        if run is not None:
            details |= {
                "listings": run.total,
                "checked": run.checked,
                "skipped": run.skipped,
                "hits": run.hits,
                "errors": len(run.errors),
            }
        if error is not None:
            details["failed"] = error
        AuditLog(self._jobs.engine).append(
            actor=self._jobs.get_job(job_id).username,
            action="listing_check",
            subject=f"job {job_id}",
            details=details,
        )
