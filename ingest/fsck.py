"""`artmatch fsck`: check that the blob store, the catalogue and the vector index agree.

The write order of `ingest.photos` (blobs, then the row with its vector in one transaction,
then the index) means a crash can leave only these, all found here:

- orphan blobs: keys under ``photos/``, ``thumbnails/`` or ``features/`` that no photo or
  local-feature row names (the crash came between the blob writes and the commit, or a
  delete stopped after its rows). Harmless but wasted space; `repair` deletes
  them. One younger than the grace period may belong to an import still in flight, so it is
  reported as pending and deleted only with ``force``.
- the saved index (local file, else the blob store's snapshot) missing vectors the catalogue
  holds, or holding ids the catalogue does not: `repair` rebuilds it.
- the saved descriptor index missing photos with stored local features, or holding photos
  that have none (checked on its own: it is saved less often than the vector index, when a
  process closes, so it can be stale while the vector index is not): `repair` rebuilds it.

And, from outside interference or older versions: rows whose photo or thumbnail blob is gone
(a thumbnail is made again from the photo; a lost photo cannot be repaired and stays reported),
local-feature rows whose blob is gone (their features are extracted again from the photo),
photos without a vector of the current model (embedded again).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.errors import ArtmatchError
from kernel.settings import Settings
from storage.blobs import BlobStore, LocalBlobStore
from storage.catalogue import Catalogue, Embedding, Photo
from storage.descriptors.base import DescriptorIndex
from storage.descriptors.registry import load_descriptor_index
from storage.features import FEATURES_PREFIX
from storage.index.base import VectorIndex
from storage.index.registry import load_index

if TYPE_CHECKING:
    from engine.services import Services
    from models.embedders import Embedder

__all__ = [
    "BLOB_PREFIXES",
    "DEFAULT_GRACE",
    "FsckReport",
    "check_store",
    "repair_store",
    "saved_descriptor_index",
]

log = logging.getLogger(__name__)

#: Where `ingest.photos` writes; anything else in the bucket (index snapshots...) is not ours.
BLOB_PREFIXES = ("photos/", "thumbnails/", FEATURES_PREFIX)
#: Orphans younger than this may be an import in flight.
DEFAULT_GRACE = dt.timedelta(hours=1)


@dataclass
class FsckReport:
    photos: int = 0
    blobs: int = 0
    #: Orphan blobs older than the grace period (or of unknown age).
    orphan_blobs: list[str] = field(default_factory=list)
    #: Orphan blobs younger than the grace period: an import may still commit their rows.
    pending_blobs: list[str] = field(default_factory=list)
    #: (photo id, key) of rows whose blob is missing.
    missing_photos: list[tuple[int, str]] = field(default_factory=list)
    missing_thumbnails: list[tuple[int, str]] = field(default_factory=list)
    #: (photo id, key) of local-feature rows whose blob is missing.
    missing_features: list[tuple[int, str]] = field(default_factory=list)
    #: Photos with no vector of the current model.
    without_vector: list[int] = field(default_factory=list)
    #: Where the checked index came from: "local", "snapshot" or "none".
    index_source: str = "none"
    #: Photo ids with a vector in the catalogue but not in the saved index.
    not_in_index: list[int] = field(default_factory=list)
    #: Ids in the saved index that have no vector of that model in the catalogue.
    not_in_catalogue: list[int] = field(default_factory=list)
    #: Whether the saved descriptor index was checked, and where it came from ("local" or
    #: "none": there is no usable saved one).
    descriptors_checked: bool = False
    descriptor_source: str = "none"
    #: Photo ids with stored local features that the saved descriptor index lacks.
    not_in_descriptors: list[int] = field(default_factory=list)
    #: Photo ids in the saved descriptor index with no stored local features.
    descriptors_not_in_catalogue: list[int] = field(default_factory=list)

    @property
    def descriptors_stale(self) -> bool:
        return bool(self.not_in_descriptors or self.descriptors_not_in_catalogue)

    @property
    def no_index(self) -> bool:
        """No saved index although there are vectors (the next start will rebuild it)."""
        return self.index_source == "none" and bool(self.not_in_index)

    @property
    def consistent(self) -> bool:
        """True when nothing needs repairing; pending blobs do not count (see module doc), nor
        does a saved descriptor index behind the catalogue: a running service saves it only
        when it stops, and every process catches it up from the stored features on opening
        it (`engine.services.open_descriptor_index`), so it is reported, not failed."""
        return not (
            self.orphan_blobs
            or self.missing_photos
            or self.missing_thumbnails
            or self.missing_features
            or self.without_vector
            or self.not_in_index
            or self.not_in_catalogue
        )

    def lines(self) -> list[str]:
        """One line per kind of problem, for people."""
        out = [
            f"{self.photos} photo row(s), {self.blobs} photo/thumbnail/feature blob(s), "
            f"index: {self.index_source}"
        ]

        def add(items: list, what: str) -> None:  # type: ignore[type-arg]
            if items:
                sample = ", ".join(str(i) for i in items[:5]) + (", ..." if len(items) > 5 else "")
                out.append(f"{len(items)} {what}: {sample}")

        add(self.orphan_blobs, "orphan blob(s) with no photo row")
        add(self.pending_blobs, "recent orphan blob(s), maybe an import in flight (kept)")
        add([k for _, k in self.missing_photos], "photo row(s) whose photo blob is missing")
        add([k for _, k in self.missing_thumbnails], "photo row(s) whose thumbnail is missing")
        add([k for _, k in self.missing_features], "local-feature row(s) whose blob is missing")
        add(self.without_vector, "photo(s) without a vector of the current model")
        if self.no_index:
            out.append(f"no saved index for {len(self.not_in_index)} stored vector(s)")
        else:
            add(self.not_in_index, "vector(s) missing from the index")
        add(self.not_in_catalogue, "index id(s) with no vector in the catalogue")
        if self.descriptors_checked:
            out.append(f"descriptor index: {self.descriptor_source}")
        if self.descriptor_source == "none" and self.not_in_descriptors:
            out.append(f"no saved descriptor index for {len(self.not_in_descriptors)} photo(s)")
        else:
            add(self.not_in_descriptors, "photo(s) missing from the saved descriptor index")
        add(self.descriptors_not_in_catalogue, "descriptor index photo(s) with no stored features")
        if self.descriptors_stale:
            out.append(
                "the saved descriptor index is behind the catalogue: caught up when a process "
                "next opens it (--repair rebuilds it now)"
            )
        out.append("consistent" if self.consistent else "INCONSISTENT")
        return out


def _photo_keys(catalogue: Catalogue) -> list[tuple[int, str, str]]:
    with Session(catalogue.engine) as session:
        rows = session.execute(select(Photo.id, Photo.blob_key, Photo.thumbnail_key)).all()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def _vector_ids(catalogue: Catalogue, model: str, model_version: str) -> np.ndarray:
    with Session(catalogue.engine) as session:
        ids = session.scalars(
            select(Embedding.photo_id).where(
                Embedding.model == model, Embedding.model_version == model_version
            )
        ).all()
    return np.asarray(ids, dtype=np.int64)


def blob_modified(blobs: BlobStore, key: str) -> dt.datetime | None:
    """When the blob was written, where the backend can tell; None otherwise."""
    if isinstance(blobs, LocalBlobStore):
        try:
            mtime = (Path(blobs.root) / key).stat().st_mtime
        except OSError:
            return None
        return dt.datetime.fromtimestamp(mtime, dt.UTC)
    client = getattr(blobs, "_client", None)  # S3BlobStore: its minio client
    bucket = getattr(blobs, "bucket", None)
    if client is not None and bucket is not None:
        try:
            modified = client.stat_object(bucket, key).last_modified
        except Exception:  # gone meanwhile, or the server refused: age unknown
            return None
        return modified if modified is None or modified.tzinfo else modified.replace(tzinfo=dt.UTC)
    return None


def saved_index(
    settings: Settings, blobs: BlobStore, embedder: Embedder
) -> tuple[VectorIndex | None, str]:
    """The index a start would use without rebuilding: the local file, else the snapshot."""
    from engine.services import snapshots_enabled
    from storage.index.snapshots import load_snapshot

    try:
        local = load_index(
            settings.index.kind,
            settings.index_path,
            model=embedder.name,
            model_version=embedder.version,
        )
        return local, "local"
    except ArtmatchError as exc:
        log.info("no local index: %s", exc)
    if snapshots_enabled(settings):
        try:
            snap = load_snapshot(
                blobs,
                model=embedder.name,
                model_version=embedder.version,
                directory=settings.index_path,
                kind=settings.index.kind,
            )
            return snap, "snapshot"
        except ArtmatchError as exc:
            log.info("no index snapshot: %s", exc)
    return None, "none"


def saved_descriptor_index(settings: Settings) -> DescriptorIndex | None:
    """The descriptor index a start would load, as saved; None when there is no usable one."""
    from models.local_features import FEATURES_KEY

    try:
        return load_descriptor_index(
            settings.index.descriptor_kind, settings.index_path, features_key=FEATURES_KEY
        )
    except ArtmatchError as exc:
        log.info("no saved descriptor index: %s", exc)
        return None


def check_store(
    *,
    catalogue: Catalogue,
    blobs: BlobStore,
    embedder: Embedder,
    index: VectorIndex | None,
    index_source: str = "local",
    grace: dt.timedelta = DEFAULT_GRACE,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
) -> FsckReport:
    """Compare the catalogue with the blob store and with ``index`` (None: no saved index);
    with ``settings``, with the saved descriptor index too."""
    now = now or dt.datetime.now(dt.UTC)
    rows = _photo_keys(catalogue)
    stored = {k for prefix in BLOB_PREFIXES for k in blobs.keys(prefix)}
    report = FsckReport(photos=len(rows), blobs=len(stored))
    named: set[str] = set()
    for photo_id, photo_key, thumb_key in rows:
        named.update((photo_key, thumb_key))
        if photo_key not in stored:
            report.missing_photos.append((photo_id, photo_key))
        if thumb_key not in stored:
            report.missing_thumbnails.append((photo_id, thumb_key))
    for photo_id, feature_key in catalogue.feature_refs():
        named.add(feature_key)
        if feature_key not in stored:
            report.missing_features.append((photo_id, feature_key))
    for key in sorted(stored - named):
        written = blob_modified(blobs, key)
        young = written is not None and now - written < grace
        (report.pending_blobs if young else report.orphan_blobs).append(key)
    report.without_vector = sorted(
        r.photo_id for r in catalogue.photos_without_vector(embedder.name, embedder.version)
    )
    vectors = _vector_ids(catalogue, embedder.name, embedder.version)
    held = index.ids() if index is not None else np.zeros(0, dtype=np.int64)
    report.index_source = index_source if index is not None else "none"
    report.not_in_index = sorted(int(i) for i in np.setdiff1d(vectors, held))
    report.not_in_catalogue = sorted(int(i) for i in np.setdiff1d(held, vectors))
    if settings is not None:
        _check_descriptors(report, catalogue, saved_descriptor_index(settings))
    return report


def _check_descriptors(
    report: FsckReport, catalogue: Catalogue, saved: DescriptorIndex | None
) -> None:
    from models.local_features import FEATURES_KEY

    wanted = np.asarray(catalogue.local_feature_ids(FEATURES_KEY), dtype=np.int64)
    held = saved.photo_ids() if saved is not None else np.zeros(0, dtype=np.int64)
    report.descriptors_checked = True
    report.descriptor_source = "local" if saved is not None else "none"
    report.not_in_descriptors = sorted(int(i) for i in np.setdiff1d(wanted, held))
    report.descriptors_not_in_catalogue = sorted(int(i) for i in np.setdiff1d(held, wanted))


def repair_store(services: Services, report: FsckReport, *, force: bool = False) -> list[str]:
    """Fix what ``report`` found; returns what was done, one line per action."""
    from engine.services import open_descriptor_index, open_index
    from ingest.reembed import reembed_missing
    from models.images import decode_image, make_thumbnail

    catalogue, blobs, settings = services.catalogue, services.blobs, services.settings
    actions: list[str] = []
    doomed = report.orphan_blobs + (report.pending_blobs if force else [])
    # Look again just before deleting: an import may have committed a row naming the blob
    # since the scan (the grace period makes that unlikely, --force makes it possible).
    named = {k for _, p, t in _photo_keys(catalogue) for k in (p, t)}
    named.update(k for _, k in catalogue.feature_refs())
    removed = [key for key in doomed if key not in named]
    for key in removed:
        blobs.delete(key)
    if removed:
        actions.append(f"removed {len(removed)} orphan blob(s)")

    lost = {pid for pid, _ in report.missing_photos}
    remade = 0
    for photo_id, thumb_key in report.missing_thumbnails:
        ref = None if photo_id in lost else catalogue.photo_refs([photo_id]).get(photo_id)
        if ref is None:
            continue
        try:
            image = decode_image(
                blobs.get(ref.blob_key), source=ref.blob_key, max_pixels=settings.max_image_pixels
            )
        except ArtmatchError as exc:
            log.warning("cannot make the thumbnail of photo %d again: %s", photo_id, exc)
            continue
        thumb = make_thumbnail(image.image, max_side=settings.storage.thumbnail_px)
        blobs.put(thumb_key, thumb, content_type="image/jpeg")
        remade += 1
    if remade:
        actions.append(f"made {remade} missing thumbnail(s) again")

    lost_features = {pid for pid, _ in report.missing_features} - lost
    if lost_features:
        catalogue.drop_local_features(lost_features)
    if report.without_vector or lost_features:
        embedded = reembed_missing(services)
        if report.without_vector:
            actions.append(f"embedded {embedded} photo(s) that had no vector")
    if lost_features:
        actions.append(f"extracted lost local features of {len(lost_features)} photo(s) again")
    rebuild_vectors = bool(report.without_vector or report.not_in_index or report.not_in_catalogue)
    if rebuild_vectors:
        services.index, _ = open_index(
            settings, catalogue, services.embedder, force_rebuild=True, blobs=blobs
        )
        services.snapshot_version = services.index.meta.version
        actions.append(f"rebuilt the index from {services.index.size} stored vector(s)")
    # Re-embedding stores local features too, and what left the vector index stale (a crash,
    # a file put back) leaves the descriptor index so as well; or it is stale on its own.
    if rebuild_vectors or report.descriptors_stale or lost_features:
        services.descriptors, _ = open_descriptor_index(settings, catalogue, force_rebuild=True)
        services.descriptors_saved_version = services.descriptors.meta.version
        actions.append(
            f"rebuilt the descriptor index from {services.descriptors.size} stored descriptor(s)"
        )
    if report.missing_photos:
        actions.append(
            f"{len(report.missing_photos)} photo(s) whose original is lost cannot be repaired: "
            "import them again, or delete their rows"
        )
    return actions
