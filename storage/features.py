"""`FeatureStore`: photos' local features as blobs, outside the relational database.

At a million catalogue photos the features (~80 KB each) would be ~80 GB of database rows; in
the blob store they cost the database one small reference row each (`LocalFeatureSet`: method,
key, size), and the ``local_features`` triggers of the index version keep firing.

A key is ``features/<method>/<sha[:2]>/<sha256 of the photo>``: derived from what the photo row
already holds, so the delete path and `artmatch fsck` know it without reading the row, and
writing it again for the same photo is harmless. Reads of many photos (a query's 10-30
candidates, a descriptor-index rebuild) fetch in parallel: on S3 each GET is a round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from kernel.errors import NotFound, StorageError
from storage.blobs import BlobStore

__all__ = ["FEATURES_PREFIX", "FeatureStore", "feature_key"]

FEATURES_PREFIX = "features/"
#: Parallel GETs of one batch: S3 latency bound, not CPU (local reads just overlap).
_FETCH_THREADS = 16


def feature_key(*, sha256: str, method: str) -> str:
    """Where the features of ``method`` ("rootsift/640/1000") of the photo ``sha256`` live."""
    safe = method.replace("/", "-")
    return f"{FEATURES_PREFIX}{safe}/{sha256[:2]}/{sha256}"


class FeatureStore:
    """Feature blobs in a `BlobStore`, read in parallel batches."""

    def __init__(self, blobs: BlobStore, *, threads: int = _FETCH_THREADS) -> None:
        self.blobs = blobs
        self.threads = threads

    def put(self, *, sha256: str, method: str, data: bytes) -> str:
        """Store ``data``; returns its key."""
        key = feature_key(sha256=sha256, method=method)
        self.blobs.put(key, data)
        return key

    def get_many(self, keys: Mapping[int, str]) -> dict[int, bytes]:
        """``{photo id: bytes}`` for ``{photo id: key}``; a missing blob is left out (and
        logged by the caller's fsck), so one lost blob does not fail a whole search."""
        if not keys:
            return {}

        def fetch(item: tuple[int, str]) -> tuple[int, bytes | None]:
            pid, key = item
            try:
                return pid, self.blobs.get(key)
            except NotFound:
                return pid, None

        items = list(keys.items())
        if len(items) == 1 or self.threads <= 1:
            results = [fetch(i) for i in items]
        else:
            with ThreadPoolExecutor(max_workers=min(self.threads, len(items))) as pool:
                results = list(pool.map(fetch, items))
        return {pid: data for pid, data in results if data is not None}

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                self.blobs.delete(key)
            except StorageError:
                # An undeleted blob is an orphan `artmatch fsck --repair` removes later.
                continue
