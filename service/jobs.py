"""Batch listing checks run off the request path, in worker threads of this process.

A job's state lives in the database (`storage.catalogue.jobs.BatchJob`), so it outlives
the browser that started it. If the service stops mid-job the job is marked failed (at
shutdown, and again by `JobRunner.recover` at the next start for a process that died), never
silently lost; the listings it already checked are committed and a re-submitted job skips them.
Building a runner touches nothing: whoever starts it (the app's lifespan, the worker) calls
``recover()`` first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.services import Services
from ingest.listings import ListingRun, check_listings, write_report
from kernel.enums import JobStatus
from kernel.errors import ArtmatchError
from storage.catalogue.audit import AuditLog
from storage.catalogue.jobs import Jobs

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)

STOPPED_MESSAGE = "the service stopped before the job finished; submit it again to resume"


class _Stopped(Exception):
    pass


class JobRunner:
    def __init__(
        self,
        *,
        jobs: Jobs,
        services: Callable[[], Services],
        reports_dir: Path,
        workers: int = 1,
        stale: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING),
    ) -> None:
        """``stale``: statuses that, found at start, belong to a process that died."""
        self._jobs = jobs
        self._services = services
        self._reports_dir = reports_dir
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="artmatch-job")
        self._stop = threading.Event()
        self._stale = stale

    def recover(self) -> int:
        """Mark failed the jobs a previous process left unfinished (call once, at start,
        before submitting); returns how many."""
        failed = self._jobs.fail_unfinished_jobs(STOPPED_MESSAGE, statuses=self._stale)
        if failed:
            log.warning("%d job(s) of a previous run were marked failed", failed)
        return failed

    def submit(self, job_id: str, manifest: Path, *, recheck: bool) -> None:
        self._pool.submit(self._run, job_id, manifest, recheck)

    def shutdown(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._jobs.fail_unfinished_jobs(STOPPED_MESSAGE, statuses=self._stale)

    def run(self, job_id: str, manifest: Path, *, recheck: bool) -> None:
        """Run one job in the calling thread (the worker process uses this)."""
        self._run(job_id, manifest, recheck)

    def _run(self, job_id: str, manifest: Path, recheck: bool) -> None:
        now = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
        self._jobs.update_job(job_id, status=JobStatus.RUNNING, started_at=now())
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if self._stop.is_set():
                raise _Stopped
            # Commit progress at most a few times a second: pollers need no more.
            if done == total or time.monotonic() - last[0] > 0.3:
                last[0] = time.monotonic()
                self._jobs.update_job(job_id, done=done, total=total)

        try:
            services = self._services()
            run, listings = check_listings(
                services, manifest, recheck=recheck, on_progress=progress
            )
            csv_path, json_path = write_report(
                services, listings, self._reports_dir / job_id / "hits"
            )
        except _Stopped:
            self._jobs.update_job(
                job_id, status=JobStatus.FAILED, message=STOPPED_MESSAGE, finished_at=now()
            )
            self._audit(job_id, manifest, None, STOPPED_MESSAGE)
            return
        except Exception as exc:  # a job must end failed, whatever went wrong
            if not isinstance(exc, ArtmatchError):
                log.exception("job %s failed", job_id)
            self._jobs.update_job(
                job_id, status=JobStatus.FAILED, message=str(exc), finished_at=now()
            )
            self._audit(job_id, manifest, None, str(exc))
            return
        self._audit(job_id, manifest, run, None)
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
