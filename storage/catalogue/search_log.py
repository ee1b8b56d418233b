"""The search log: who searched for what, when, and what came back (table ``search_log``;
the migrations own it). Kept for accountability: a police search must be traceable.

Each row is written in the same transaction as its entry in the audit chain
(`storage.catalogue.audit`), whose details repeat the row; `search_log_mismatches` tells which
rows no longer agree with their entry, so editing or deleting a row is caught.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

# The accounts table must be on the metadata before a row with its foreign key is flushed,
# also in a process (the command line) that never imported the accounts module.
import storage.catalogue.accounts  # noqa: F401
from kernel.errors import NotFound
from storage.catalogue.audit import AuditEntry, append_entry, canonical_json, lock_chain
from storage.catalogue.orm import Base, utcnow
from storage.catalogue.records import created
from storage.catalogue.sessions import Repository

__all__ = ["SEARCH_ACTION", "SearchLog", "SearchLogRecord", "SearchLogRow", "search_log_mismatches"]

#: The action of a search's entry in the audit chain.
SEARCH_ACTION = "search"


class SearchLogRow(Base):
    __tablename__ = "search_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    #: Kept as text too, so the log survives the account's deletion.
    username: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    case_reference: Mapped[str | None] = mapped_column(String(500))
    query_sha256: Mapped[str] = mapped_column(String(64), index=True)
    filters_json: Mapped[str] = mapped_column(Text, default="{}")
    matches: Mapped[int] = mapped_column(Integer, default=0)
    top_object_id: Mapped[str | None] = mapped_column(String(200))
    top_similarity: Mapped[float | None] = mapped_column(Float)


@dataclass(frozen=True)
class SearchLogRecord:
    id: int
    #: The author's account (None for a command-line search, or once the account is gone).
    account_id: int | None
    username: str
    created_at: dt.datetime
    case_reference: str | None
    query_sha256: str
    filters: dict[str, Any]
    matches: int
    top_object_id: str | None
    top_similarity: float | None


def _search(r: SearchLogRow) -> SearchLogRecord:
    return SearchLogRecord(
        id=r.id,
        account_id=r.account_id,
        username=r.username,
        created_at=created(r.created_at),
        case_reference=r.case_reference,
        query_sha256=r.query_sha256,
        filters=json.loads(r.filters_json or "{}"),
        matches=r.matches,
        top_object_id=r.top_object_id,
        top_similarity=r.top_similarity,
    )


class SearchLog(Repository):
    """The search log: one row per search, newest first when listed."""

    def log_search(
        self,
        *,
        username: str,
        account_id: int | None,
        case_reference: str | None,
        query_sha256: str,
        filters: dict[str, Any],
        matches: int,
        top_object_id: str | None,
        top_similarity: float | None,
        via: str = "api",
    ) -> int:
        """Log one search and chain it (one transaction); ``via`` says which path ran it
        (api, page, cli). Returns the search's id."""
        with self._session() as session:
            lock_chain(session)
            row = SearchLogRow(
                account_id=account_id,
                username=username,
                created_at=utcnow(),
                case_reference=case_reference,
                query_sha256=query_sha256,
                filters_json=canonical_json(filters),
                matches=matches,
                top_object_id=top_object_id,
                top_similarity=top_similarity,
            )
            session.add(row)
            session.flush()
            append_entry(
                session,
                actor=username,
                action=SEARCH_ACTION,
                subject=f"search {row.id}",
                details=_chained(row) | {"via": via},
                created_at=row.created_at,
            )
            return row.id

    def get_search(self, search_id: int) -> SearchLogRecord:
        with self._session() as session:
            r = session.get(SearchLogRow, search_id)
            if r is None:
                raise NotFound(f"no search {search_id}")
            return _search(r)

    def search_log(
        self, *, offset: int, limit: int, username: str | None = None
    ) -> tuple[list[SearchLogRecord], int]:
        with self._session() as session:
            where = [SearchLogRow.username == username] if username else []
            total = session.scalar(select(func.count(SearchLogRow.id)).where(*where)) or 0
            rows = session.scalars(
                select(SearchLogRow)
                .where(*where)
                .order_by(SearchLogRow.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [_search(r) for r in rows], total


def _chained(r: SearchLogRow) -> dict[str, Any]:
    """What the chain entry of a search repeats of its row."""
    return {
        "search_id": r.id,
        "account_id": r.account_id,
        "case_reference": r.case_reference,
        "query_sha256": r.query_sha256,
        "filters": json.loads(r.filters_json or "{}"),
        "matches": r.matches,
        "top_object_id": r.top_object_id,
        "top_similarity": r.top_similarity,
    }


def search_log_mismatches(
    session: Session, entries: dict[int, AuditEntry]
) -> list[tuple[int | None, str]]:
    """(chain position, message) for each search row that differs from its chain entry, has
    none, or was deleted; ``entries`` maps search ids to their (verified) chain entries."""
    found: list[tuple[int | None, str]] = []
    seen: set[int] = set()
    for r in session.scalars(
        select(SearchLogRow).order_by(SearchLogRow.id).execution_options(yield_per=1000)
    ):
        seen.add(r.id)
        entry = entries.get(r.id)
        if entry is None:
            found.append((None, f"search {r.id} has no entry in the chain"))
            continue
        ours = json.loads(canonical_json(_chained(r) | {"account_id": None}))
        theirs = {k: v for k, v in entry.details.items() if k != "via"} | {"account_id": None}
        if (
            ours != theirs
            # NULL once the account is deleted (the foreign key's SET NULL): no tampering.
            or r.account_id not in (None, entry.details.get("account_id"))
            or r.username != entry.actor
            or created(r.created_at) != entry.created_at
        ):
            found.append((entry.seq, f"entry {entry.seq}: search {r.id} was changed in the log"))
    for search_id, entry in entries.items():
        if search_id not in seen:
            found.append(
                (entry.seq, f"entry {entry.seq}: search {search_id} was deleted from the log")
            )
    found.sort(key=lambda m: (m[0] is None, m[0] or 0))
    return found
