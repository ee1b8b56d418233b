"""The search log: who searched for what, when, and what came back (table ``search_log``;
the migrations own it). Kept for accountability: a police search must be traceable.

Each row is written in the same transaction as its entry in the audit chain
(`storage.catalogue.audit`), whose details repeat the row; `search_log_mismatches` tells which
rows no longer agree with their entry, so editing or deleting a row is caught.

A search made through the service also keeps what came back and what was searched (tables
``search_hits`` and ``search_coverage``, written in the same transaction), so a match report
or a due-diligence receipt can be made later from the facts as they were at that moment;
the chain entry carries their digest (``record_sha256``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

# The accounts table must be on the metadata before a row with its foreign key is flushed,
# also in a process (the command line) that never imported the accounts module.
import storage.catalogue.accounts  # noqa: F401
from kernel.errors import NotFound
from storage.catalogue.audit import AuditEntry, append_entry, canonical_json, lock_chain
from storage.catalogue.orm import Base, utcnow
from storage.catalogue.records import created
from storage.catalogue.sessions import Repository

__all__ = [
    "SearchLogFilter",
    "SEARCH_ACTION",
    "SearchCoverage",
    "SearchCoverageRow",
    "SearchHitRow",
    "SearchLog",
    "SearchLogRecord",
    "SearchLogRow",
    "SearchRecord",
    "StoredHit",
    "search_log_mismatches",
]

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


class SearchHitRow(Base):
    """One hit of a logged search, as the search decided it."""

    __tablename__ = "search_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    search_id: Mapped[int] = mapped_column(
        ForeignKey("search_log.id", ondelete="CASCADE"), index=True
    )
    rank: Mapped[int] = mapped_column(Integer)
    object_id: Mapped[str] = mapped_column(String(200))
    institution: Mapped[str] = mapped_column(String(200))
    #: No foreign key: the photo may be deleted later, the record of the search stays.
    photo_id: Mapped[int] = mapped_column(Integer)
    similarity: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(20))
    inliers: Mapped[int | None] = mapped_column(Integer)
    #: The matched region of the query photo, "x0,y0,x1,y1" in its pixels.
    region: Mapped[str | None] = mapped_column(String(100))
    threshold: Mapped[float] = mapped_column(Float)
    threshold_on: Mapped[str] = mapped_column(String(20))


class SearchCoverageRow(Base):
    """What one logged search covered at that moment (a receipt states it)."""

    __tablename__ = "search_coverage"

    search_id: Mapped[int] = mapped_column(
        ForeignKey("search_log.id", ondelete="CASCADE"), primary_key=True
    )
    statuses_json: Mapped[str] = mapped_column(Text, default="null")
    institutions_json: Mapped[str] = mapped_column(Text, default="null")
    objects_searched: Mapped[int] = mapped_column(Integer)
    photos_searched: Mapped[int] = mapped_column(Integer)
    index_version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    matcher: Mapped[str] = mapped_column(String(200))
    service_version: Mapped[str] = mapped_column(String(50))
    verification: Mapped[bool] = mapped_column(Boolean)
    threshold: Mapped[float] = mapped_column(Float)
    threshold_on: Mapped[str] = mapped_column(String(20))
    query_width: Mapped[int] = mapped_column(Integer)
    query_height: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class StoredHit:
    rank: int
    object_id: str
    institution: str
    photo_id: int
    similarity: float
    confidence: float | None
    decision: str
    inliers: int | None
    region: tuple[int, int, int, int] | None
    threshold: float
    threshold_on: str


@dataclass(frozen=True)
class SearchCoverage:
    statuses: list[str] | None
    institutions: list[str] | None
    objects_searched: int
    photos_searched: int
    index_version: int
    #: The embedder's name and version.
    model: str
    #: The matcher and calibration version (`models/calibration.json`).
    matcher: str
    service_version: str
    verification: bool
    threshold: float
    threshold_on: str
    query_size: tuple[int, int]


@dataclass(frozen=True)
class SearchRecord:
    """What a search covered and what came back, kept with its log row."""

    coverage: SearchCoverage
    hits: list[StoredHit] = field(default_factory=list)

    def digest(self) -> str:
        """SHA-256 of the record's canonical JSON (repeated in the chain entry)."""
        return hashlib.sha256(canonical_json(asdict(self)).encode()).hexdigest()


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
        record: SearchRecord | None = None,
    ) -> int:
        """Log one search and chain it (one transaction); ``via`` says which path ran it
        (api, page, cli); ``record`` (its hits and coverage) is stored in the same
        transaction. Returns the search's id."""
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
            details = _chained(row) | {"via": via}
            if record is not None:
                _store_record(session, row.id, record)
                details["record_sha256"] = record.digest()
            append_entry(
                session,
                actor=username,
                action=SEARCH_ACTION,
                subject=f"search {row.id}",
                details=details,
                created_at=row.created_at,
            )
            return row.id

    def search_record(self, search_id: int) -> SearchRecord | None:
        """The hits and coverage kept with search ``search_id`` (None: a search logged
        without them, e.g. from the command line or before they were kept)."""
        with self._session() as session:
            c = session.get(SearchCoverageRow, search_id)
            if c is None:
                return None
            rows = session.scalars(
                select(SearchHitRow)
                .where(SearchHitRow.search_id == search_id)
                .order_by(SearchHitRow.rank)
            ).all()
            coverage = SearchCoverage(
                statuses=json.loads(c.statuses_json),
                institutions=json.loads(c.institutions_json),
                objects_searched=c.objects_searched,
                photos_searched=c.photos_searched,
                index_version=c.index_version,
                model=c.model,
                matcher=c.matcher,
                service_version=c.service_version,
                verification=c.verification,
                threshold=c.threshold,
                threshold_on=c.threshold_on,
                query_size=(c.query_width, c.query_height),
            )
            hits = [
                StoredHit(
                    rank=h.rank,
                    object_id=h.object_id,
                    institution=h.institution,
                    photo_id=h.photo_id,
                    similarity=h.similarity,
                    confidence=h.confidence,
                    decision=h.decision,
                    inliers=h.inliers,
                    region=_box(h.region),
                    threshold=h.threshold,
                    threshold_on=h.threshold_on,
                )
                for h in rows
            ]
            return SearchRecord(coverage=coverage, hits=hits)

    def get_search(self, search_id: int) -> SearchLogRecord:
        with self._session() as session:
            r = session.get(SearchLogRow, search_id)
            if r is None:
                raise NotFound(f"no search {search_id}")
            return _search(r)

    def search_log(
        self,
        *,
        offset: int,
        limit: int,
        username: str | None = None,
        filters: SearchLogFilter | None = None,
    ) -> tuple[list[SearchLogRecord], int]:
        """A page of the log, newest first, and how many rows the filter leaves."""
        where = (filters or SearchLogFilter()).where(username=username)
        with self._session() as session:
            total = session.scalar(select(func.count(SearchLogRow.id)).where(*where)) or 0
            rows = session.scalars(
                select(SearchLogRow)
                .where(*where)
                .order_by(SearchLogRow.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [_search(r) for r in rows], total


@dataclass(frozen=True)
class SearchLogFilter:
    """Which searches of the log to show: by author, case and day (UTC, both ends kept)."""

    username: str | None = None
    #: Part of the case reference, any case ("2024-17" finds "POL/2024-17").
    case: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    def where(self, *, username: str | None = None) -> list[Any]:
        who = username or self.username
        where: list[Any] = [SearchLogRow.username == who] if who else []
        if self.case:
            escaped = (
                self.case.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            )
            where.append(func.lower(SearchLogRow.case_reference).like(f"%{escaped}%", escape="\\"))
        if self.since is not None:
            start = dt.datetime.combine(self.since, dt.time(), tzinfo=dt.UTC)
            where.append(SearchLogRow.created_at >= start)
        if self.until is not None:
            end = dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            where.append(SearchLogRow.created_at < end)
        return where


def _store_record(session: Session, search_id: int, record: SearchRecord) -> None:
    c = record.coverage
    session.add(
        SearchCoverageRow(
            search_id=search_id,
            statuses_json=json.dumps(c.statuses),
            institutions_json=json.dumps(c.institutions),
            objects_searched=c.objects_searched,
            photos_searched=c.photos_searched,
            index_version=c.index_version,
            model=c.model,
            matcher=c.matcher,
            service_version=c.service_version,
            verification=c.verification,
            threshold=c.threshold,
            threshold_on=c.threshold_on,
            query_width=c.query_size[0],
            query_height=c.query_size[1],
        )
    )
    session.add_all(
        SearchHitRow(
            search_id=search_id,
            rank=h.rank,
            object_id=h.object_id,
            institution=h.institution,
            photo_id=h.photo_id,
            similarity=h.similarity,
            confidence=h.confidence,
            decision=h.decision,
            inliers=h.inliers,
            region=",".join(str(int(v)) for v in h.region) if h.region else None,
            threshold=h.threshold,
            threshold_on=h.threshold_on,
        )
        for h in record.hits
    )


def _box(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    x0, y0, x1, y1 = (int(v) for v in text.split(","))
    return (x0, y0, x1, y1)


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
        # The record's digest is checked by whoever reads the record (a report), not here.
        theirs = {k: v for k, v in entry.details.items() if k not in ("via", "record_sha256")} | {
            "account_id": None
        }
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
