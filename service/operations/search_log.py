"""The search log as the auditor reads it: filtered by day, user and case, a page at a time
or every filtered row as CSV. Only roles `service.policy` lets audit reach it (the routes'
dependency); they read every search."""

from __future__ import annotations

import csv
import datetime as dt
import io

from ingest.listings import neutralise_cell
from kernel.errors import InvalidInput
from service.deps import Principal
from service.runtime import Runtime
from service.schemas import Page, SearchLogOut
from storage.catalogue.search_log import SearchLogFilter

__all__ = ["CSV_COLUMNS", "MAX_CSV_ROWS", "log_filter", "search_log", "search_log_csv"]

#: An export past this many rows is refused: narrow the dates instead.
MAX_CSV_ROWS = 100_000
CSV_COLUMNS = (
    "id",
    "created_at",
    "username",
    "case_reference",
    "query_sha256",
    "filters",
    "matches",
    "top_object_id",
    "top_similarity",
)


def log_filter(
    *,
    username: str | None,
    case: str | None,
    since: dt.date | None,
    until: dt.date | None,
) -> SearchLogFilter:
    if since is not None and until is not None and since > until:
        raise InvalidInput(f"the date range is empty: from {since} is after to {until}")
    return SearchLogFilter(
        username=(username or "").strip() or None,
        case=(case or "").strip() or None,
        since=since,
        until=until,
    )


def search_log(
    rt: Runtime, *, filters: SearchLogFilter, page: int, page_size: int
) -> Page[SearchLogOut]:
    rows, total = rt.search_log.search_log(
        offset=(page - 1) * page_size, limit=page_size, filters=filters
    )
    items = [SearchLogOut(**r.__dict__) for r in rows]
    return Page[SearchLogOut](items=items, total=total, page=page, page_size=page_size)


def search_log_csv(rt: Runtime, principal: Principal, *, filters: SearchLogFilter) -> str:
    """Every row the filter leaves, newest first, as CSV; the export itself is logged."""
    rows, total = rt.search_log.search_log(offset=0, limit=MAX_CSV_ROWS + 1, filters=filters)
    if total > MAX_CSV_ROWS:
        raise InvalidInput(
            f"{total:,} searches match; export at most {MAX_CSV_ROWS:,} (narrow the dates)"
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        cells = [
            r.id,
            r.created_at.isoformat(timespec="seconds"),
            r.username,
            r.case_reference or "",
            r.query_sha256,
            "; ".join(
                f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in r.filters.items()
                if v
            ),
            r.matches,
            r.top_object_id or "",
            "" if r.top_similarity is None else f"{r.top_similarity:.4f}",
        ]
        # Case references and user names are typed by people: a spreadsheet must not run them.
        writer.writerow([neutralise_cell(c) for c in cells])
    rt.audit.append(
        actor=principal.account.username,
        action="search_log_export",
        subject="search log",
        details={
            "rows": len(rows),
            "username": filters.username,
            "case": filters.case,
            "since": filters.since.isoformat() if filters.since else None,
            "until": filters.until.isoformat() if filters.until else None,
        },
    )
    return out.getvalue()
