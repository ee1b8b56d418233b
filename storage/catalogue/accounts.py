"""What the web service keeps besides the catalogue: accounts, API tokens, the search log and
batch jobs (tables on the catalogue's `Base`). Catalogue browsing for the service is in
`storage.catalogue.browse`.

Like `repository.py`, callers get plain records, never live ORM objects. Secrets are never
stored: passwords arrive already hashed and tokens as their SHA-256.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.enums import JobStatus, Role, TokenKind
from kernel.errors import Conflict, NotFound
from storage.catalogue.orm import Base, Institution
from storage.catalogue.sessions import Repository

__all__ = [
    "Account",
    "AccountRecord",
    "Accounts",
    "ApiToken",
    "BatchJob",
    "JobRecord",
    "JobStatus",
    "Role",
    "SearchLog",
    "SearchLogRecord",
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes even for timezone=True columns; they were stored as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(_enum(Role, "account_role"))
    #: The institution a registrar manages; None for the other roles.
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ApiToken(Base):
    """A bearer token for scripts (kind "api") or a browser login (kind "session")."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="api")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SearchLog(Base):
    __tablename__ = "search_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    #: Kept as text too, so the log survives the account's deletion.
    username: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, index=True
    )
    case_reference: Mapped[str | None] = mapped_column(String(500))
    query_sha256: Mapped[str] = mapped_column(String(64), index=True)
    filters_json: Mapped[str] = mapped_column(Text, default="{}")
    matches: Mapped[int] = mapped_column(Integer, default=0)
    top_object_id: Mapped[str | None] = mapped_column(String(200))
    top_score: Mapped[float | None] = mapped_column(Float)


class BatchJob(Base):
    __tablename__ = "batch_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(100))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), index=True)
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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRecord:
    id: int
    username: str
    role: Role
    institution: str | None
    active: bool
    password_hash: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class SearchLogRecord:
    id: int
    username: str
    created_at: dt.datetime
    case_reference: str | None
    query_sha256: str
    filters: dict[str, Any]
    matches: int
    top_object_id: str | None
    top_score: float | None


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


def _account(row: Account, institution: str | None) -> AccountRecord:
    return AccountRecord(
        id=row.id,
        username=row.username,
        role=row.role,
        institution=institution,
        active=row.active,
        password_hash=row.password_hash,
        created_at=_aware(row.created_at) or _now(),
    )


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
        created_at=_aware(row.created_at) or _now(),
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
    )


def _search(r: SearchLog) -> SearchLogRecord:
    return SearchLogRecord(
        id=r.id,
        username=r.username,
        created_at=_aware(r.created_at) or _now(),
        case_reference=r.case_reference,
        query_sha256=r.query_sha256,
        filters=json.loads(r.filters_json or "{}"),
        matches=r.matches,
        top_object_id=r.top_object_id,
        top_score=r.top_score,
    )


def _institution(session: Session, name: str, *, create: bool) -> Institution:
    inst = session.scalar(select(Institution).where(Institution.name == name))
    if inst is None:
        if not create:
            raise NotFound(f"no institution {name!r}")
        inst = Institution(name=name)
        session.add(inst)
        session.flush()
    return inst


class Accounts(Repository):
    """Accounts, tokens, the search log and batch jobs.

    The tables belong to the migrations (revision 0002): open the engine with
    `create_catalogue`, which checks (or, for a new SQLite file, makes) the schema.
    """

    # -- accounts --------------------------------------------------------------------------

    def _inst_name(self, session: Session, institution_id: int | None) -> str | None:
        if institution_id is None:
            return None
        return session.scalar(select(Institution.name).where(Institution.id == institution_id))

    def create_account(
        self, *, username: str, password_hash: str | None, role: Role, institution: str | None
    ) -> AccountRecord:
        with self._session() as session:
            if session.scalar(select(Account.id).where(Account.username == username)):
                raise Conflict(f"an account {username!r} already exists")
            inst = _institution(session, institution, create=True) if institution else None
            row = Account(
                username=username,
                password_hash=password_hash,
                role=role,
                institution_id=inst.id if inst else None,
            )
            session.add(row)
            session.flush()
            return _account(row, institution)

    def get(self, account_id: int) -> AccountRecord:
        with self._session() as session:
            row = session.get(Account, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}")
            return _account(row, self._inst_name(session, row.institution_id))

    def by_username(self, username: str) -> AccountRecord | None:
        with self._session() as session:
            row = session.scalar(select(Account).where(Account.username == username))
            return (
                None if row is None else _account(row, self._inst_name(session, row.institution_id))
            )

    def list_accounts(self) -> list[AccountRecord]:
        with self._session() as session:
            rows = session.scalars(select(Account).order_by(Account.username)).all()
            return [_account(r, self._inst_name(session, r.institution_id)) for r in rows]

    def update_account(
        self,
        account_id: int,
        *,
        password_hash: str | None = None,
        active: bool | None = None,
        role: Role | None = None,
        institution: str | None = None,
    ) -> AccountRecord:
        with self._session() as session:
            row = session.get(Account, account_id)
            if row is None:
                raise NotFound(f"no account {account_id}")
            if password_hash is not None:
                row.password_hash = password_hash
            if active is not None:
                row.active = active
                if not active:
                    session.execute(delete(ApiToken).where(ApiToken.account_id == account_id))
            if role is not None:
                row.role = role
            if institution is not None:
                row.institution_id = _institution(session, institution, create=True).id
            session.flush()
            return _account(row, self._inst_name(session, row.institution_id))

    def count(self, role: Role | None = None) -> int:
        with self._session() as session:
            query = select(func.count(Account.id))
            if role is not None:
                query = query.where(Account.role == role)
            return session.scalar(query) or 0

    # -- tokens ----------------------------------------------------------------------------

    def add_token(
        self,
        *,
        account_id: int,
        name: str,
        token_sha256: str,
        kind: TokenKind = TokenKind.API,
        expires_at: dt.datetime | None = None,
    ) -> int:
        with self._session() as session:
            row = ApiToken(
                account_id=account_id,
                name=name,
                kind=kind,
                token_sha256=token_sha256,
                expires_at=expires_at,
            )
            session.add(row)
            session.flush()
            return row.id

    def account_for_token(self, token_sha256: str, *, kind: str) -> AccountRecord | None:
        with self._session() as session:
            row = session.scalar(
                select(ApiToken).where(ApiToken.token_sha256 == token_sha256, ApiToken.kind == kind)
            )
            if row is None:
                return None
            expires = _aware(row.expires_at)
            if expires is not None and expires <= _now():
                session.delete(row)
                return None
            account = session.get(Account, row.account_id)
            if account is None or not account.active:
                return None
            return _account(account, self._inst_name(session, account.institution_id))

    def tokens_of(self, account_id: int) -> list[tuple[int, str, dt.datetime, dt.datetime | None]]:
        with self._session() as session:
            rows = session.scalars(
                select(ApiToken)
                .where(ApiToken.account_id == account_id, ApiToken.kind == TokenKind.API)
                .order_by(ApiToken.id)
            ).all()
            return [
                (r.id, r.name, _aware(r.created_at) or _now(), _aware(r.expires_at)) for r in rows
            ]

    def delete_token(
        self,
        *,
        token_id: int | None = None,
        token_sha256: str | None = None,
        account_id: int | None = None,
    ) -> None:
        with self._session() as session:
            query = select(ApiToken)
            if token_id is not None:
                query = query.where(ApiToken.id == token_id)
            if token_sha256 is not None:
                query = query.where(ApiToken.token_sha256 == token_sha256)
            if account_id is not None:
                query = query.where(ApiToken.account_id == account_id)
            row = session.scalar(query)
            if row is None:
                raise NotFound("no such token")
            session.delete(row)

    # -- search log ------------------------------------------------------------------------

    def log_search(
        self,
        *,
        account: AccountRecord,
        case_reference: str | None,
        query_sha256: str,
        filters: dict[str, Any],
        matches: int,
        top_object_id: str | None,
        top_score: float | None,
    ) -> int:
        with self._session() as session:
            row = SearchLog(
                account_id=account.id,
                username=account.username,
                case_reference=case_reference,
                query_sha256=query_sha256,
                filters_json=json.dumps(filters, default=str),
                matches=matches,
                top_object_id=top_object_id,
                top_score=top_score,
            )
            session.add(row)
            session.flush()
            return row.id

    def get_search(self, search_id: int) -> SearchLogRecord:
        with self._session() as session:
            r = session.get(SearchLog, search_id)
            if r is None:
                raise NotFound(f"no search {search_id}")
            return _search(r)

    def search_log(
        self, *, offset: int, limit: int, username: str | None = None
    ) -> tuple[list[SearchLogRecord], int]:
        with self._session() as session:
            where = [SearchLog.username == username] if username else []
            total = session.scalar(select(func.count(SearchLog.id)).where(*where)) or 0
            rows = session.scalars(
                select(SearchLog)
                .where(*where)
                .order_by(SearchLog.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [_search(r) for r in rows], total

    # -- batch jobs ------------------------------------------------------------------------

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
                claimed = session.execute(
                    update(BatchJob)
                    .where(BatchJob.id == job_id, BatchJob.status == JobStatus.QUEUED)
                    .values(status=JobStatus.RUNNING, started_at=_now())
                ).rowcount
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
                row.finished_at = _now()
            return len(rows)
