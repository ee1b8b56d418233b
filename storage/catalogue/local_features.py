"""The catalogue's local-feature rows: references to blobs (`storage.features`), or, for rows
written before migration 0011 and not yet moved, the bytes themselves.

`FeatureRows` is a part of `Catalogue`. With a `FeatureStore` attached (`attach_features`:
`engine.services.build_services` does) new features go to the blob store and the row keeps
the method, key and size; without one (a bare catalogue in a test, a tool that reads only
rows) they stay in the row, as before. Reads take either form, so old and new rows coexist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from kernel.errors import ConfigError, NotFound
from storage.catalogue.orm import LocalFeatureSet, Photo
from storage.catalogue.records import PhotoRef, photo_ref
from storage.catalogue.sessions import Repository
from storage.features import FeatureStore
from storage.index.base import fingerprint_ids

__all__ = ["FeatureRows"]

log = logging.getLogger(__name__)

_COLUMNS = (LocalFeatureSet.photo_id, LocalFeatureSet.data, LocalFeatureSet.blob_key)


class FeatureRows(Repository):
    #: Where new features go; None keeps them in the rows (`attach_features`).
    features: FeatureStore | None = None

    def attach_features(self, store: FeatureStore | None) -> None:
        self.features = store

    def _feature_row(
        self, session: Session, *, photo_id: int, sha256: str, method: str, data: bytes
    ) -> LocalFeatureSet:
        """The row for new features, their blob written first: a crash before the commit
        leaves an orphan blob (`artmatch fsck` removes it), never a row without its blob."""
        if self.features is None:
            row = LocalFeatureSet(photo_id=photo_id, method=method, data=data, size=len(data))
        else:
            key = self.features.put(sha256=sha256, method=method, data=data)
            row = LocalFeatureSet(photo_id=photo_id, method=method, blob_key=key, size=len(data))
        session.add(row)
        return row

    def _feature_bytes(
        self, rows: Sequence[Row[int, bytes | None, str | None]]
    ) -> dict[int, bytes]:
        out = {int(pid): bytes(data) for pid, data, key in rows if key is None and data is not None}
        refs = {int(pid): key for pid, _, key in rows if key is not None}
        if refs:
            if self.features is None:
                raise ConfigError("local features live in the blob store; no store attached")
            found = self.features.get_many(refs)
            if len(found) < len(refs):
                log.warning(
                    "local features missing from the blob store for photo(s) %s "
                    "(artmatch fsck reports them)",
                    sorted(set(refs) - set(found))[:10],
                )
            out.update(found)
        return out

    def local_features(self, photo_ids: Iterable[int], method: str) -> dict[int, bytes]:
        """``{photo id: bytes}`` of the photos with features of ``method``: one query, then
        one parallel batch of blob reads."""
        ids = list({int(i) for i in photo_ids})
        if not ids:
            return {}
        with self._session() as session:
            rows = session.execute(
                select(*_COLUMNS).where(
                    LocalFeatureSet.photo_id.in_(ids), LocalFeatureSet.method == method
                )
            ).all()
        return self._feature_bytes(rows)

    def local_feature_ids(self, method: str) -> list[int]:
        """The ids of the photos with stored local features of ``method``, sorted."""
        with self._session() as session:
            ids = session.scalars(
                select(LocalFeatureSet.photo_id)
                .where(LocalFeatureSet.method == method)
                .order_by(LocalFeatureSet.photo_id)
            ).all()
        return [int(i) for i in ids]

    def local_feature_fingerprint(self, method: str) -> str:
        """Changes whenever the set of photos with local features of ``method`` changes
        (`storage.index.base.fingerprint_ids`, as the descriptor index reports it)."""
        return fingerprint_ids(self.local_feature_ids(method))

    def iter_local_features(
        self, method: str, *, batch: int = 256
    ) -> Iterator[list[tuple[int, bytes]]]:
        """Every stored ``(photo id, data)`` of ``method`` in photo id order, ``batch`` rows
        per list and per query (its blobs read in parallel), so a rebuild never holds the
        whole table."""
        after = -1
        while True:
            with self._session() as session:
                rows = session.execute(
                    select(*_COLUMNS)
                    .where(LocalFeatureSet.method == method, LocalFeatureSet.photo_id > after)
                    .order_by(LocalFeatureSet.photo_id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            found = self._feature_bytes(rows)
            yield sorted(found.items())
            after = int(rows[-1][0])

    def store_local_features(self, photo_id: int, method: str, data: bytes) -> None:
        with self._session() as session:
            sha = session.scalar(select(Photo.sha256).where(Photo.id == photo_id))
            if sha is None:
                raise NotFound(f"no photo {photo_id}")
            self._feature_row(session, photo_id=photo_id, sha256=sha, method=method, data=data)

    def photos_without_local_features(self, method: str) -> list[PhotoRef]:
        with self._session() as session:
            have = select(LocalFeatureSet.photo_id).where(LocalFeatureSet.method == method)
            rows = session.scalars(select(Photo).where(Photo.id.not_in(have))).all()
            return [photo_ref(p) for p in rows]

    def feature_refs(self) -> list[tuple[int, str]]:
        """``(photo id, blob key)`` of every row whose features live in the blob store."""
        with self._session() as session:
            rows = session.execute(
                select(LocalFeatureSet.photo_id, LocalFeatureSet.blob_key)
                .where(LocalFeatureSet.blob_key.is_not(None))
                .order_by(LocalFeatureSet.photo_id)
            ).all()
        return [(int(pid), str(key)) for pid, key in rows]

    def drop_local_features(self, photo_ids: Iterable[int]) -> int:
        """Delete the feature rows of ``photo_ids`` (all methods): for features whose blob
        is lost, so that they are extracted again (`ingest.reembed.reembed_missing`)."""
        ids = [int(i) for i in photo_ids]
        if not ids:
            return 0
        with self._session() as session:
            rows = session.scalars(
                select(LocalFeatureSet).where(LocalFeatureSet.photo_id.in_(ids))
            ).all()
            for row in rows:
                session.delete(row)
        return len(rows)

    def features_in_rows(self) -> int:
        """How many rows still hold their bytes (`move_features_to_blobs` has work)."""
        with self._session() as session:
            count = session.scalar(select(func.count()).where(LocalFeatureSet.blob_key.is_(None)))
        return int(count or 0)

    def move_features_to_blobs(
        self, *, batch: int = 100, progress: Callable[[int], None] | None = None
    ) -> int:
        """Move every row's bytes to the blob store, ``batch`` rows per transaction; returns
        the rows moved. Idempotent: a moved row is skipped, and a crash mid-batch leaves
        rows still holding their bytes (and maybe blobs written again on the next run)."""
        if self.features is None:
            raise ConfigError("moving local features needs a blob store")
        moved = 0
        while True:
            with self._session() as session:
                rows = session.execute(
                    select(LocalFeatureSet, Photo.sha256)
                    .join(Photo, Photo.id == LocalFeatureSet.photo_id)
                    .where(LocalFeatureSet.blob_key.is_(None))
                    .order_by(LocalFeatureSet.id)
                    .limit(batch)
                ).all()
                for row, sha in rows:
                    data = bytes(row.data or b"")
                    row.blob_key = self.features.put(sha256=sha, method=row.method, data=data)
                    row.size = len(data)
                    row.data = None
            if not rows:
                return moved
            moved += len(rows)
            if progress is not None:
                progress(len(rows))
