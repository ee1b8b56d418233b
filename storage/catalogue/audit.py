"""The audit chain: an append-only, hash-chained log of who did what (table ``audit_log``; the
migrations own it).

Every entry stores the SHA-256 of its canonical content (position, time, actor, action,
subject, details) together with the hash of the entry before it (``prev_hash``; the first
entry's is `GENESIS`). Editing an entry changes its hash; deleting or reordering entries
breaks the link of the next one; `AuditLog.verify` walks the chain and names the first entry
that does not hold. Searches are also rows of ``search_log`` (`storage.catalogue.search_log`):
each is written in the same transaction as its chain entry, and `verify` checks the two agree,
so an edited or deleted search row is caught too.

What the chain cannot show on its own is the removal of its newest entries: `verify` reports
the head (count and hash) so an auditor can write it down and compare later.

Appends are serialised so two processes never fork the chain: SQLite takes its write lock at
the start of the transaction (``BEGIN IMMEDIATE``), PostgreSQL a transaction-scoped advisory
lock; the unique ``seq`` and ``prev_hash`` columns refuse a fork whatever happens, and a
refused append is retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.errors import Conflict, StorageError
from storage.catalogue.orm import Base, utcnow
from storage.catalogue.records import aware
from storage.catalogue.sessions import Repository

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditLog",
    "AuditRow",
    "ChainStatus",
    "append_entry",
    "canonical_json",
    "entry_hash",
    "lock_chain",
]

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64
#: An arbitrary constant naming the chain's advisory lock on PostgreSQL.
_PG_LOCK_KEY = 0x61756469
_ATTEMPTS = 5


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Position in the chain, 1, 2, 3...; the order the hashes link in.
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(50), index=True)
    subject: Mapped[str | None] = mapped_column(String(500))
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    created_at: dt.datetime
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class ChainStatus:
    """The outcome of `AuditLog.verify`."""

    ok: bool
    #: Entries read (up to the first broken one when broken).
    entries: int
    #: The hash of the newest entry (write it down to detect truncation later).
    head: str
    #: The position (``seq``) of the first entry that does not hold, and why.
    broken_at: int | None = None
    problem: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.ok:
            return f"chain intact: {self.entries} entries, head {self.head}"
        return f"chain broken at entry {self.broken_at}: {self.problem}"


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no spaces (the bytes that get hashed)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _when(value: dt.datetime) -> str:
    # SQLite hands times back without a zone, PostgreSQL with one: hash one spelling of UTC.
    return aware(value).astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    created_at: dt.datetime,
    actor: str,
    action: str,
    subject: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    content = {
        "seq": seq,
        "created_at": _when(created_at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        created_at=aware(row.created_at),
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=json.loads(row.details_json or "{}"),
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


def lock_chain(session: Session) -> None:
    """Take the chain's write lock for the rest of ``session``'s transaction; call it before
    anything else in the transaction (SQLite can only take it at the start)."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # pysqlite has not begun a transaction yet (it does so lazily before a write), so this
        # one takes the database's write lock now and waits up to busy_timeout for it.
        if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")


def append_entry(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    details: Mapping[str, Any] | None = None,
    created_at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry in ``session``'s transaction (after `lock_chain`)."""
    # Through JSON and back, so what is hashed now is what a later reading parses.
    clean = json.loads(canonical_json(dict(details or {})))
    when = created_at or utcnow()
    last = session.execute(
        select(AuditRow.seq, AuditRow.entry_hash).order_by(AuditRow.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    digest = entry_hash(
        seq=seq,
        created_at=when,
        actor=actor,
        action=action,
        subject=subject,
        details=clean,
        prev_hash=prev,
    )
    row = AuditRow(
        seq=seq,
        created_at=when,
        actor=actor,
        action=action,
        subject=subject,
        details_json=canonical_json(clean),
        prev_hash=prev,
        entry_hash=digest,
    )
    session.add(row)
    session.flush()
    return _entry(row)


class AuditLog(Repository):
    """Appending to the chain, reading it, and verifying it."""

    def append(
        self,
        *,
        actor: str,
        action: str,
        subject: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry in its own transaction (retried if another process appended at
        the same moment)."""
        for attempt in range(_ATTEMPTS):
            try:
                with self._session() as session:
                    lock_chain(session)
                    return append_entry(
                        session, actor=actor, action=action, subject=subject, details=details
                    )
            except (Conflict, StorageError) as exc:
                if attempt == _ATTEMPTS - 1 or not isinstance(
                    exc.__cause__, IntegrityError | OperationalError
                ):
                    raise
        raise AssertionError("unreachable")

    def entries(
        self, *, offset: int, limit: int, actor: str | None = None, action: str | None = None
    ) -> tuple[list[AuditEntry], int]:
        """Newest first."""
        with self._session() as session:
            where = []
            if actor:
                where.append(AuditRow.actor == actor)
            if action:
                where.append(AuditRow.action == action)
            total = session.scalar(select(func.count(AuditRow.id)).where(*where)) or 0
            rows = session.scalars(
                select(AuditRow)
                .where(*where)
                .order_by(AuditRow.seq.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [_entry(r) for r in rows], total

    def _rows(self, session: Session) -> Iterator[AuditRow]:
        yield from session.scalars(
            select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=1000)
        )

    def verify(self) -> ChainStatus:
        """Walk the chain from the first entry; the first entry that was edited, removed or
        moved (or a search log row that differs from its entry) breaks it."""
        # Imported here: the search log appends through this module.
        from storage.catalogue.search_log import search_log_mismatches

        with self._session() as session:
            prev = GENESIS
            count = 0
            search_entries: dict[int, AuditEntry] = {}
            for row in self._rows(session):
                expected_seq = count + 1
                problem = None
                if row.seq != expected_seq:
                    problem = f"entry {expected_seq} is missing (the next one is {row.seq})"
                elif row.prev_hash != prev:
                    problem = "it does not follow the entry before it (deleted or reordered)"
                else:
                    entry = _entry(row)
                    recomputed = entry_hash(
                        seq=row.seq,
                        created_at=entry.created_at,
                        actor=row.actor,
                        action=row.action,
                        subject=row.subject,
                        details=entry.details,
                        prev_hash=row.prev_hash,
                    )
                    if recomputed != row.entry_hash:
                        problem = "its content was changed after it was written"
                    elif row.action == "search" and isinstance(entry.details.get("search_id"), int):
                        search_entries[entry.details["search_id"]] = entry
                if problem:
                    return ChainStatus(
                        ok=False,
                        entries=count,
                        head=prev,
                        broken_at=expected_seq,
                        problem=f"entry {expected_seq}: {problem}",
                    )
                prev = row.entry_hash
                count += 1
            mismatches = search_log_mismatches(session, search_entries)
        if mismatches:
            seq, message = mismatches[0]
            return ChainStatus(
                ok=False,
                entries=count,
                head=prev,
                broken_at=seq,
                problem=message,
                problems=[m for _, m in mismatches],
            )
        return ChainStatus(ok=True, entries=count, head=prev)
