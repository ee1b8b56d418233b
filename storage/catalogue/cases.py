"""Investigations: cases, who they are shared with, the searches and batch checks attached to
them, and the review decisions on their hits (tables ``cases``, ``case_shares``,
``case_searches``, ``case_jobs``, ``case_decisions``; the migrations own them).

A review decision is never edited: each one is a new row and the latest for a hit (search id
+ object id) wins, so the history of who confirmed or rejected what, and when, is kept. Every
change here is written in the same transaction as its entry in the audit chain
(`storage.catalogue.audit`), as searches are, so a case's history can be proved later.

Who may see or change a case is not decided here but in `service.policy`; this module only
answers who owns a case and with whom it is shared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.errors import Conflict, InvalidInput, NotFound
from storage.catalogue.accounts import Account, AccountRecord
from storage.catalogue.audit import append_entry, lock_chain
from storage.catalogue.orm import Base, utcnow
from storage.catalogue.records import created
from storage.catalogue.sessions import Repository

__all__ = [
    "CaseAccess",
    "CaseAttachment",
    "CaseDecisionRow",
    "CaseJobRow",
    "CaseRecord",
    "CaseRow",
    "CaseSearchRow",
    "CaseShareRow",
    "Cases",
    "DecisionRecord",
    "ReviewDecision",
    "ShareRecord",
    "latest_decisions",
]


# Closed sets of this aggregate only; stored as plain strings rather than database enums so
# that adding a value needs no ALTER TYPE on PostgreSQL.
class CaseAccess(StrEnum):
    """What a share grants (the author and admins always write)."""

    READ = "read"
    WRITE = "write"


class ReviewDecision(StrEnum):
    """An investigator's verdict on one hit of a search."""

    PENDING_REVIEW = "pending_review"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The investigator's own file number (police or prosecutor reference).
    reference: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(500))
    notes: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    #: Kept as text too, so the case says who opened it after the account is gone.
    owner_username: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseShareRow(Base):
    __tablename__ = "case_shares"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    access: Mapped[str] = mapped_column(String(20))
    shared_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseSearchRow(Base):
    """A search belongs to at most one case (its primary key is the search)."""

    __tablename__ = "case_searches"

    search_id: Mapped[int] = mapped_column(
        ForeignKey("search_log.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    attached_by: Mapped[str] = mapped_column(String(100))
    attached_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseJobRow(Base):
    """A batch check belongs to at most one case."""

    __tablename__ = "case_jobs"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    attached_by: Mapped[str] = mapped_column(String(100))
    attached_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseDecisionRow(Base):
    """One review decision; never updated (the newest per search and object wins)."""

    __tablename__ = "case_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # Keyed by search and object: the hits themselves are stored elsewhere (or not at all).
    search_id: Mapped[int] = mapped_column(
        ForeignKey("search_log.id", ondelete="CASCADE"), index=True
    )
    object_id: Mapped[str] = mapped_column(String(200))
    photo_id: Mapped[int | None] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class CaseRecord:
    id: int
    reference: str
    title: str
    notes: str
    owner_id: int | None
    owner_username: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class ShareRecord:
    account_id: int
    username: str
    access: CaseAccess
    shared_by: str
    created_at: dt.datetime


@dataclass(frozen=True)
class CaseAttachment:
    """A search (``key`` its id) or batch check (``key`` its job id) attached to a case."""

    key: int | str
    attached_by: str
    attached_at: dt.datetime


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    case_id: int
    search_id: int
    object_id: str
    photo_id: int | None
    decision: ReviewDecision
    note: str | None
    username: str
    created_at: dt.datetime


def _case(r: CaseRow) -> CaseRecord:
    return CaseRecord(
        id=r.id,
        reference=r.reference,
        title=r.title,
        notes=r.notes or "",
        owner_id=r.owner_id,
        owner_username=r.owner_username,
        created_at=created(r.created_at),
        updated_at=created(r.updated_at),
    )


def _decision(r: CaseDecisionRow) -> DecisionRecord:
    return DecisionRecord(
        id=r.id,
        case_id=r.case_id,
        search_id=r.search_id,
        object_id=r.object_id,
        photo_id=r.photo_id,
        decision=ReviewDecision(r.decision),
        note=r.note,
        username=r.username,
        created_at=created(r.created_at),
    )


def latest_decisions(history: list[DecisionRecord]) -> dict[tuple[int, str], DecisionRecord]:
    """(search id, object id) -> the decision that stands: the newest row for that hit."""
    latest: dict[tuple[int, str], DecisionRecord] = {}
    for d in history:
        key = (d.search_id, d.object_id)
        if key not in latest or d.id > latest[key].id:
            latest[key] = d
    return latest


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Cases(Repository):
    """Cases and everything attached to them."""

    @contextmanager
    def _chained(
        self, *, actor: str, action: str, case_id: int | None = None
    ) -> Iterator[tuple[Session, dict[str, Any]]]:
        """A transaction whose change is chained in the audit log as ``action`` by ``actor``;
        the caller fills in the details (and ``case_id`` for a new case) before it ends."""
        with self._session() as session:
            lock_chain(session)
            details: dict[str, Any] = {}
            yield session, details
            case = details.pop("case_id", case_id)
            append_entry(
                session,
                actor=actor,
                action=action,
                subject=f"case {case}",
                details={"case_id": case} | details,
            )

    @staticmethod
    def _row(session: Session, case_id: int) -> CaseRow:
        row = session.get(CaseRow, case_id)
        if row is None:
            raise NotFound(f"no case {case_id}")
        return row

    # -- cases ---------------------------------------------------------------------------

    def open_case(
        self, *, owner: AccountRecord, reference: str, title: str, notes: str = ""
    ) -> CaseRecord:
        with self._chained(actor=owner.username, action="case_open") as (session, details):
            now = utcnow()
            row = CaseRow(
                reference=reference,
                title=title,
                notes=notes,
                owner_id=owner.id,
                owner_username=owner.username,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            details |= {"case_id": row.id, "reference": reference, "title": title}
            return _case(row)

    def get_case(self, case_id: int) -> CaseRecord:
        with self._session() as session:
            return _case(self._row(session, case_id))

    def update_case(self, case_id: int, *, actor: str, changes: Mapping[str, str]) -> CaseRecord:
        """Change ``reference``, ``title`` or ``notes`` (the only keys allowed)."""
        unknown = set(changes) - {"reference", "title", "notes"}
        if unknown:
            raise InvalidInput(f"a case has no field {sorted(unknown)[0]!r} to change")
        with self._chained(actor=actor, action="case_update", case_id=case_id) as (
            session,
            details,
        ):
            row = self._row(session, case_id)
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            # Notes may be long and are the case's own business: the chain keeps their hash.
            details |= {k: v for k, v in changes.items() if k != "notes"}
            if "notes" in changes:
                details["notes_sha256"] = _digest(changes["notes"])
            return _case(row)

    def list_cases(
        self, *, offset: int, limit: int, account_id: int | None = None
    ) -> tuple[list[CaseRecord], int]:
        """Newest first; with ``account_id``, only the cases it owns or is shared."""
        where = []
        if account_id is not None:
            shared = select(CaseShareRow.case_id).where(CaseShareRow.account_id == account_id)
            where.append(or_(CaseRow.owner_id == account_id, CaseRow.id.in_(shared)))
        with self._session() as session:
            total = session.scalar(select(func.count(CaseRow.id)).where(*where)) or 0
            rows = session.scalars(
                select(CaseRow)
                .where(*where)
                .order_by(CaseRow.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [_case(r) for r in rows], total

    # -- shares --------------------------------------------------------------------------

    def shares(self, case_id: int) -> list[ShareRecord]:
        with self._session() as session:
            rows = session.execute(
                select(CaseShareRow, Account.username)
                .join(Account, Account.id == CaseShareRow.account_id)
                .where(CaseShareRow.case_id == case_id)
                .order_by(Account.username)
            ).all()
            return [
                ShareRecord(
                    account_id=s.account_id,
                    username=username,
                    access=CaseAccess(s.access),
                    shared_by=s.shared_by,
                    created_at=created(s.created_at),
                )
                for s, username in rows
            ]

    def share_of(self, case_id: int, account_id: int) -> CaseAccess | None:
        with self._session() as session:
            row = session.get(CaseShareRow, (case_id, account_id))
            return CaseAccess(row.access) if row else None

    def share(
        self, case_id: int, *, account: AccountRecord, access: CaseAccess, actor: str
    ) -> None:
        """Share the case with ``account`` (or change what an existing share grants)."""
        with self._chained(actor=actor, action="case_share", case_id=case_id) as (
            session,
            details,
        ):
            self._row(session, case_id)
            row = session.get(CaseShareRow, (case_id, account.id))
            if row is None:
                session.add(
                    CaseShareRow(
                        case_id=case_id,
                        account_id=account.id,
                        access=access.value,
                        shared_by=actor,
                        created_at=utcnow(),
                    )
                )
            else:
                row.access = access.value
            details |= {"account": account.username, "access": access.value}

    def unshare(self, case_id: int, *, account: AccountRecord, actor: str) -> None:
        with self._chained(actor=actor, action="case_unshare", case_id=case_id) as (
            session,
            details,
        ):
            row = session.get(CaseShareRow, (case_id, account.id))
            if row is None:
                raise NotFound(f"case {case_id} is not shared with {account.username}")
            session.delete(row)
            details["account"] = account.username

    # -- searches and batch checks -------------------------------------------------------

    def attach_search(self, case_id: int, *, search_id: int, actor: str) -> None:
        """Attach a logged search; attaching it again to the same case changes nothing."""
        with self._chained(actor=actor, action="case_attach_search", case_id=case_id) as (
            session,
            details,
        ):
            self._row(session, case_id)
            row = session.get(CaseSearchRow, search_id)
            if row is not None:
                if row.case_id != case_id:
                    raise Conflict(f"search {search_id} belongs to another case")
            else:
                session.add(
                    CaseSearchRow(
                        search_id=search_id,
                        case_id=case_id,
                        attached_by=actor,
                        attached_at=utcnow(),
                    )
                )
            details["search_id"] = search_id

    def attach_job(self, case_id: int, *, job_id: str, actor: str) -> None:
        with self._chained(actor=actor, action="case_attach_job", case_id=case_id) as (
            session,
            details,
        ):
            self._row(session, case_id)
            row = session.get(CaseJobRow, job_id)
            if row is not None and row.case_id != case_id:
                raise Conflict(f"job {job_id} belongs to another case")
            if row is None:
                session.add(
                    CaseJobRow(
                        job_id=job_id, case_id=case_id, attached_by=actor, attached_at=utcnow()
                    )
                )
            details["job_id"] = job_id

    def searches_of(self, case_id: int) -> list[CaseAttachment]:
        """The case's searches, newest first."""
        with self._session() as session:
            rows = session.scalars(
                select(CaseSearchRow)
                .where(CaseSearchRow.case_id == case_id)
                .order_by(CaseSearchRow.search_id.desc())
            ).all()
            return [
                CaseAttachment(r.search_id, r.attached_by, created(r.attached_at)) for r in rows
            ]

    def jobs_of(self, case_id: int) -> list[CaseAttachment]:
        """The case's batch checks, newest first."""
        with self._session() as session:
            rows = session.scalars(
                select(CaseJobRow)
                .where(CaseJobRow.case_id == case_id)
                .order_by(CaseJobRow.attached_at.desc())
            ).all()
            return [CaseAttachment(r.job_id, r.attached_by, created(r.attached_at)) for r in rows]

    def case_of_search(self, search_id: int) -> int | None:
        with self._session() as session:
            row = session.get(CaseSearchRow, search_id)
            return row.case_id if row else None

    # -- review decisions ----------------------------------------------------------------

    def decide(
        self,
        case_id: int,
        *,
        search_id: int,
        object_id: str,
        photo_id: int | None,
        decision: ReviewDecision,
        note: str | None,
        account: AccountRecord,
    ) -> DecisionRecord:
        """Record a decision on a hit of a search attached to the case (a new row)."""
        with self._chained(actor=account.username, action="case_decision", case_id=case_id) as (
            session,
            details,
        ):
            attached = session.get(CaseSearchRow, search_id)
            if attached is None or attached.case_id != case_id:
                raise InvalidInput(f"search {search_id} is not attached to case {case_id}")
            row = CaseDecisionRow(
                case_id=case_id,
                search_id=search_id,
                object_id=object_id,
                photo_id=photo_id,
                decision=decision.value,
                note=note,
                account_id=account.id,
                username=account.username,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            details |= {
                "decision_id": row.id,
                "search_id": search_id,
                "object_id": object_id,
                "photo_id": photo_id,
                "decision": decision.value,
            }
            return _decision(row)

    def decisions(self, case_id: int, *, search_id: int | None = None) -> list[DecisionRecord]:
        """Every decision on the case's hits, newest first (the full history)."""
        query = select(CaseDecisionRow).where(CaseDecisionRow.case_id == case_id)
        if search_id is not None:
            query = query.where(CaseDecisionRow.search_id == search_id)
        with self._session() as session:
            rows = session.scalars(query.order_by(CaseDecisionRow.id.desc())).all()
            return [_decision(r) for r in rows]
