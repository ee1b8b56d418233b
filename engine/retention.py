"""Retention of query photos: the photos investigators searched with are kept for the
evidence pictures, and deleted once no search has used them for the retention period
(``ARTMATCH_QUERY_RETENTION_DAYS``). The search log keeps its rows: only the photo goes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from engine.evidence import QUERY_PREFIX
from storage.blobs import BlobStore
from storage.catalogue.query_photos import QueryPhotoAges

__all__ = ["PruneResult", "prune_query_photos"]


@dataclass(frozen=True)
class PruneResult:
    #: Query photos older than the cut-off (deleted unless it was a dry run).
    expired: int
    kept: int
    #: Query photos no search names: left alone, since a search stores its photo just
    #: before it writes its log row, and one may be between the two now.
    unlogged: int


def prune_query_photos(
    *,
    blobs: BlobStore,
    ages: QueryPhotoAges,
    days: int,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete the query photos whose latest search is more than ``days`` days old."""
    if days <= 0:
        raise ValueError("a retention of 0 days keeps every query photo: nothing to prune")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    keys = {key.rsplit("/", 1)[-1]: key for key in blobs.keys(f"{QUERY_PREFIX}/")}
    last = ages.last_searched(keys)
    expired = [keys[sha] for sha, when in last.items() if when < cutoff]
    if not dry_run:
        for key in expired:
            blobs.delete(key)
    return PruneResult(
        expired=len(expired), kept=len(last) - len(expired), unlogged=len(keys) - len(last)
    )
