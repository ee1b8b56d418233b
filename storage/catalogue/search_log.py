"""The search log: who searched for what, when, and what came back (table ``search_log``;
the migrations own it). Kept for accountability: a police search must be traceable.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from kernel.errors import NotFound
from storage.catalogue.accounts import AccountRecord
from storage.catalogue.orm import Base, utcnow
from storage.catalogue.records import created
from storage.catalogue.sessions import Repository

__all__ = ["SearchLog", "SearchLogRecord", "SearchLogRow"]


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
        account: AccountRecord,
        case_reference: str | None,
        query_sha256: str,
        filters: dict[str, Any],
        matches: int,
        top_object_id: str | None,
        top_similarity: float | None,
    ) -> int:
        with self._session() as session:
            row = SearchLogRow(
                account_id=account.id,
                username=account.username,
                case_reference=case_reference,
                query_sha256=query_sha256,
                filters_json=json.dumps(filters, default=str),
                matches=matches,
                top_object_id=top_object_id,
                top_similarity=top_similarity,
            )
            session.add(row)
            session.flush()
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
