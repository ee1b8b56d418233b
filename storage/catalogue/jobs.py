"""Batch jobs of the web service: listing checks queued, run and reported (table
``batch_jobs``; the migrations own it). A job's state lives here so it outlives the browser
that started it and the process that ran it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, mapped_column

from kernel.enums import JobStatus
from kernel.errors import NotFound
from storage.catalogue.accounts import AccountRecord
from storage.catalogue.orm import Base, enum_type, utcnow
from storage.catalogue.records import aware, created
from storage.catalogue.sessions import Repository

__all__ = ["BatchJob", "JobRecord", "Jobs"]


class BatchJob(Base):
    __tablename__ = "batch_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(100))
    status: Mapped[JobStatus] = mapped_column(enum_type(JobStatus, "job_status"), index=True)
    manifest: Mapped[str] = mapped_column(String(2000))
    recheck: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    checked: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    errors_json: Mapped[str] = mapped_column(Text, default="[]")
    message: Mapped[str | None] = mapped_column(Text)
    report_csv: Mapped[str | None] = mapped_column(String(2000))
    report_json: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: The lease: which runner (host, process, runner) runs the job, and when it last said it
    #: still does. Another process fails a running job only once its lease has run out.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class JobRecord:
    id: str
    username: str
    status: JobStatus
    manifest: str
    recheck: bool
    total: int
    done: int
    checked: int
    skipped: int
    hits: int
    errors: list[str]
    message: str | None
    report_csv: str | None
    report_json: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    account_id: int | None = None
    claimed_by: str | None = None
    heartbeat_at: dt.datetime | None = None


def _job(row: BatchJob) -> JobRecord:
    return JobRecord(
        id=row.id,
        username=row.username,
        status=row.status,
        manifest=row.manifest,
        recheck=row.recheck,
        total=row.total,
        done=row.done,
        checked=row.checked,
        skipped=row.skipped,
        hits=row.hits,
        errors=json.loads(row.errors_json or "[]"),
        message=row.message,
        report_csv=row.report_csv,
        report_json=row.report_json,
        created_at=created(row.created_at),
        started_at=aware(row.started_at),
        finished_at=aware(row.finished_at),
        account_id=row.account_id,
        claimed_by=row.claimed_by,
        heartbeat_at=aware(row.heartbeat_at),
    )


class Jobs(Repository):
    """Batch jobs: queued by the service, claimed and run by a worker thread or process."""

    def create_job(
        self, *, job_id: str, account: AccountRecord, manifest: str, recheck: bool, total: int
    ) -> JobRecord:
        with self._session() as session:
            row = BatchJob(
                id=job_id,
                account_id=account.id,
                username=account.username,
                status=JobStatus.QUEUED,
                manifest=manifest,
                recheck=recheck,
                total=total,
            )
            session.add(row)
            session.flush()
            return _job(row)

    def update_job(self, job_id: str, **fields: Any) -> None:
        if "errors" in fields:
            fields["errors_json"] = json.dumps(fields.pop("errors"))
        with self._session() as session:
            row = session.get(BatchJob, job_id)
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            for key, value in fields.items():
                setattr(row, key, value)

    def get_job(self, job_id: str) -> JobRecord:
        with self._session() as session:
            row = session.get(BatchJob, job_id)
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            return _job(row)

    def list_jobs(self, *, limit: int = 50, account_id: int | None = None) -> list[JobRecord]:
        """The newest jobs; with ``account_id``, only that account's."""
        query = select(BatchJob).order_by(BatchJob.created_at.desc()).limit(limit)
        if account_id is not None:
            query = query.where(BatchJob.account_id == account_id)
        with self._session() as session:
            return [_job(r) for r in session.scalars(query).all()]

    def finished_before(self, cutoff: dt.datetime) -> list[str]:
        """Ids of the jobs that finished (succeeded or failed) before ``cutoff``."""
        with self._session() as session:
            return list(
                session.scalars(
                    select(BatchJob.id).where(
                        BatchJob.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED]),
                        BatchJob.finished_at < cutoff,
                    )
                ).all()
            )

    def job_ids(self) -> set[str]:
        with self._session() as session:
            return set(session.scalars(select(BatchJob.id)).all())

    def claim_job(self, job_id: str, *, owner: str) -> bool:
        """Take the queued job ``job_id`` for ``owner`` (marked running, lease started);
        False when it is not queued any more (another runner took it, or it was failed).

        The conditional UPDATE makes the claim atomic: two runners never run one job.
        """
        now = utcnow()
        with self._session() as session:
            result = session.execute(
                update(BatchJob)
                .where(BatchJob.id == job_id, BatchJob.status == JobStatus.QUEUED)
                .values(
                    status=JobStatus.RUNNING, started_at=now, claimed_by=owner, heartbeat_at=now
                )
            )
            return bool(cast("CursorResult[Any]", result).rowcount)

    def claim_next_job(self, *, owner: str = "") -> JobRecord | None:
        """Take the oldest queued job for ``owner`` (see `claim_job`), or None."""
        with self._session() as session:
            candidates = session.scalars(
                select(BatchJob.id)
                .where(BatchJob.status == JobStatus.QUEUED)
                .order_by(BatchJob.created_at)
                .limit(5)
            ).all()
        for job_id in candidates:
            if self.claim_job(job_id, owner=owner):
                return self.get_job(job_id)
        return None

    def renew_leases(self, job_ids: Sequence[str], *, owner: str) -> None:
        """Say that ``owner`` still runs these jobs."""
        if not job_ids:
            return
        with self._session() as session:
            session.execute(
                update(BatchJob)
                .where(
                    BatchJob.id.in_(list(job_ids)),
                    BatchJob.claimed_by == owner,
                    BatchJob.status == JobStatus.RUNNING,
                )
                .values(heartbeat_at=utcnow())
            )

    def fail_unfinished_jobs(
        self,
        message: str,
        *,
        statuses: Sequence[JobStatus] = (JobStatus.QUEUED, JobStatus.RUNNING),
        lease: dt.timedelta | None = None,
        owner: str | None = None,
    ) -> int:
        """Mark failed the jobs with one of ``statuses`` that nobody runs any more (never
        lost). A running job is failed only when it is ``owner``'s or its ``lease`` ran out
        (no heartbeat for that long), so that one process never fails a job another still
        runs; with neither given, every running job is (only where nothing else runs jobs)."""
        now = utcnow()
        with self._session() as session:
            rows = session.scalars(
                select(BatchJob).where(BatchJob.status.in_(list(statuses)))
            ).all()
            failed = 0
            for row in rows:
                if row.status is JobStatus.RUNNING and (owner or lease) is not None:
                    beat = aware(row.heartbeat_at)
                    mine = owner is not None and row.claimed_by == owner
                    expired = lease is not None and (beat is None or now - beat >= lease)
                    if not (mine or expired):
                        continue
                row.status = JobStatus.FAILED
                row.message = message
                row.finished_at = now
                failed += 1
            return failed
