"""When each stored query photo was last searched with, for the retention of query photos
(`engine.retention`). Reads the search log; never writes it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select

from storage.catalogue.records import created
from storage.catalogue.search_log import SearchLogRow
from storage.catalogue.sessions import Repository

__all__ = ["QueryPhotoAges"]

#: Hashes asked about per query: well under every database's limit of bound parameters.
_BATCH = 500


class QueryPhotoAges(Repository):
    def last_searched(self, sha256s: Iterable[str]) -> dict[str, dt.datetime]:
        """The time of the latest search with each photo; a photo no search names is left out."""
        wanted = list(dict.fromkeys(sha256s))
        found: dict[str, dt.datetime] = {}
        with self._session() as session:
            for start in range(0, len(wanted), _BATCH):
                rows = session.execute(
                    select(SearchLogRow.query_sha256, func.max(SearchLogRow.created_at))
                    .where(SearchLogRow.query_sha256.in_(wanted[start : start + _BATCH]))
                    .group_by(SearchLogRow.query_sha256)
                ).all()
                found.update({sha: created(when) for sha, when in rows})
        return found
