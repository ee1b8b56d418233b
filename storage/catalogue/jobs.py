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

    def list_jobs(self, *, limit: int = 50) -> list[JobRecord]:
        with self._session() as session:
            rows = session.scalars(
                select(BatchJob).order_by(BatchJob.created_at.desc()).limit(limit)
            ).all()
            return [_job(r) for r in rows]

    def claim_next_job(self) -> JobRecord | None:
        """Take the oldest queued job for this process (marked running), or None.

        The conditional UPDATE makes the claim atomic: two workers never run one job.
        """
        with self._session() as session:
            candidates = session.scalars(
                select(BatchJob.id)
                .where(BatchJob.status == JobStatus.QUEUED)
                .order_by(BatchJob.created_at)
                .limit(5)
            ).all()
            for job_id in candidates:
                result = session.execute(
                    update(BatchJob)
                    .where(BatchJob.id == job_id, BatchJob.status == JobStatus.QUEUED)
                    .values(status=JobStatus.RUNNING, started_at=utcnow())
                )
                claimed = cast("CursorResult[Any]", result).rowcount
                if claimed:
                    session.flush()
                    return _job(session.get(BatchJob, job_id))  # type: ignore[arg-type]
            return None

    def fail_unfinished_jobs(
        self, message: str, *, statuses: Sequence[JobStatus] = (JobStatus.QUEUED, JobStatus.RUNNING)
    ) -> int:
        """Mark jobs a previous process left unfinished as failed (never lost)."""
        with self._session() as session:
            rows = session.scalars(
                select(BatchJob).where(BatchJob.status.in_(list(statuses)))
            ).all()
            for row in rows:
                row.status = JobStatus.FAILED
                row.message = message
                row.finished_at = utcnow()
            return len(rows)
