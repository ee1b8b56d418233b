"""The assembled parts of artmatch: built once from settings, shared by CLI, API and jobs."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kernel.errors import ArtmatchError
from kernel.settings import Settings
from storage.blobs import BlobStore, create_blob_store
from storage.catalogue import Catalogue, create_catalogue
from storage.descriptors.base import DescriptorIndex, DescriptorMeta
from storage.descriptors.registry import (
    create_descriptor_index,
    descriptor_index_type,
    load_descriptor_index,
)
from storage.index.base import IndexMeta, VectorIndex, fingerprint_ids
from storage.index.registry import create_index, index_type, load_index
from storage.index.snapshots import latest_snapshot, load_snapshot, save_snapshot

if TYPE_CHECKING:
    from models.embedders import Embedder

__all__ = [
    "Services",
    "build_services",
    "open_descriptor_index",
    "open_index",
    "snapshots_enabled",
    "refresh_descriptors",
]

log = logging.getLogger(__name__)

#: Photos first read to estimate the descriptors per photo of a rebuilt descriptor index;
#: more are read when the lists it will train need more points (`_training_sample`).
TRAIN_PHOTOS = 200


@dataclass
class Services:
    settings: Settings
    catalogue: Catalogue
    blobs: BlobStore
    embedder: Embedder
    index: VectorIndex
    #: Local descriptors of every photo with stored features (`open_descriptor_index`).
    descriptors: DescriptorIndex
    #: True when `open_index` had to rebuild the index from the catalogue.
    index_rebuilt: bool = field(default=False)
    #: `DescriptorMeta.version` of the descriptor index as last saved or loaded.
    descriptors_saved_version: int | None = field(default=None)
    #: `IndexMeta.version` of the index as last snapshotted or loaded; None: never.
    snapshot_version: int | None = field(default=None)

    def save_snapshot(self) -> None:
        """Snapshot the index to the blob store if it changed since the last snapshot (and
        snapshots are on); a failure is logged, never raised: the snapshot is an optimisation."""
        if not snapshots_enabled(self.settings) or self.index.meta.version == self.snapshot_version:
            return
        try:
            save_snapshot(self.blobs, self.index)
            self.snapshot_version = self.index.meta.version
        except ArtmatchError as exc:
            log.warning("index snapshot not saved: %s", exc)

    def save_descriptors(self) -> None:
        """Save the descriptor index if it changed since it was last saved or loaded.

        Not after every ingest batch like the vector index: the file is ~75 KB per photo.
        A crash loses the unsaved changes, and the next start sees the index is stale (its
        photos differ from the catalogue's) and rebuilds it from the stored features.
        """
        from models.local_features import FEATURES_KEY

        if self.descriptors.meta.version == self.descriptors_saved_version:
            return
        fingerprint = self.catalogue.local_feature_fingerprint(FEATURES_KEY)
        self.descriptors.meta.fingerprint = fingerprint
        self.descriptors.save()
        self.descriptors_saved_version = self.descriptors.meta.version

    def close(self) -> None:
        self.index.save()
        self.save_snapshot()
        self.save_descriptors()
        self.catalogue.close()


def snapshots_enabled(settings: Settings) -> bool:
    flag = settings.index.snapshots
    return flag if flag is not None else settings.storage.backend not in ("local", "memory")


def _refresh_snapshot(blobs: BlobStore, index: VectorIndex) -> None:
    """Snapshot a fresh local index if the blob store's snapshot lags behind it (a crash
    before `Services.close`, say); one small GET when it does not."""
    try:
        latest = latest_snapshot(blobs, index.meta.model, index.meta.model_version)
        if latest is None or latest.fingerprint != index.meta.fingerprint:
            save_snapshot(blobs, index)
    except ArtmatchError as exc:
        log.warning("index snapshot not refreshed: %s", exc)


def open_index(
    settings: Settings,
    catalogue: Catalogue,
    embedder: Embedder,
    *,
    force_rebuild: bool = False,
    blobs: BlobStore | None = None,
) -> tuple[VectorIndex, bool]:
    """The saved index if it matches the catalogue, else the blob store's latest snapshot if
    it matches (with ``blobs`` and snapshots on), else one rebuilt from stored vectors (and
    then snapshotted)."""
    kind = settings.index.kind
    index_type(kind)  # an unknown kind is a `ConfigError` here, not a failed load and a rebuild
    fingerprint = catalogue.vector_fingerprint(embedder.name, embedder.version)
    snapshots = blobs is not None and snapshots_enabled(settings)
    if not force_rebuild:
        try:
            index = load_index(
                kind, settings.index_path, model=embedder.name, model_version=embedder.version
            )
            # Compare what the index really holds, not what its metadata claims.
            held = fingerprint_ids(index.ids())
            if held == fingerprint:
                if snapshots:
                    _refresh_snapshot(blobs, index)  # type: ignore[arg-type]
                return index, False
            log.info("index is stale (%s != %s); rebuilding", held, fingerprint)
        except Exception as exc:  # IndexNotReady, or a file faiss cannot parse
            log.info("local index not usable: %s", exc)
        if snapshots:
            assert blobs is not None
            try:
                index = load_snapshot(
                    blobs,
                    model=embedder.name,
                    model_version=embedder.version,
                    directory=settings.index_path,
                    kind=kind,
                )
                if index.meta.fingerprint == fingerprint:
                    index.save()  # the next start of this replica finds it locally
                    return index, False
                log.info("index snapshot is stale (%s != %s)", index.meta.fingerprint, fingerprint)
            except ArtmatchError as exc:
                log.info("index snapshot not usable: %s", exc)
    index = create_index(
        kind,
        directory=settings.index_path,
        meta=IndexMeta(model=embedder.name, model_version=embedder.version, dim=embedder.dim),
    )
    ids, vectors = catalogue.vectors(embedder.name, embedder.version)
    if len(ids):
        index.add(ids, vectors)
    index.meta.fingerprint = fingerprint
    index.save()
    if snapshots:
        assert blobs is not None
        try:
            save_snapshot(blobs, index)
        except ArtmatchError as exc:
            log.warning("index snapshot not saved: %s", exc)
    return index, True


def open_descriptor_index(
    settings: Settings, catalogue: Catalogue, *, force_rebuild: bool = False
) -> tuple[DescriptorIndex, bool]:
    """The saved descriptor index if it holds exactly the photos with stored local features
    (and has not outgrown its training), else one rebuilt from those features and saved.
    Returns it and whether it was rebuilt."""
    from models.local_features import FEATURES_KEY

    kind = settings.index.descriptor_kind
    descriptor_index_type(kind)  # an unknown kind is a `ConfigError`, not a rebuild
    fingerprint = catalogue.local_feature_fingerprint(FEATURES_KEY)
    if not force_rebuild:
        try:
            index = load_descriptor_index(kind, settings.index_path, features_key=FEATURES_KEY)
            # Compare what the index really holds, not what its metadata claims.
            held = fingerprint_ids(index.photo_ids())
            if held == fingerprint and not index.outgrown:
                return index, False
            log.info(
                "descriptor index is stale or outgrown (%s != %s); rebuilding", held, fingerprint
            )
        except Exception as exc:  # IndexNotReady, or a file faiss cannot parse
            log.info("descriptor index not usable: %s", exc)
    index = create_descriptor_index(
        kind, directory=settings.index_path, meta=DescriptorMeta(features_key=FEATURES_KEY)
    )
    _fill_descriptor_index(index, catalogue, FEATURES_KEY)
    index.meta.fingerprint = fingerprint
    index.save()
    return index, True


def refresh_descriptors(services: Services) -> bool:
    """Rebuild the descriptor index from the stored features if it has outgrown its
    training (an IVF index trained on its first 10,000 descriptors searches a catalogue of
    200,000 several times slower than one trained for it); returns whether it did.

    The rebuilt index replaces the contents of ``services.descriptors`` in place, so a
    service's lock wrapper and every holder see it.
    """
    from models.local_features import FEATURES_KEY

    if not services.descriptors.outgrown:
        return False
    settings = services.settings
    rebuilt = create_descriptor_index(
        settings.index.descriptor_kind,
        directory=settings.index_path,
        meta=DescriptorMeta(features_key=FEATURES_KEY),
    )
    _fill_descriptor_index(rebuilt, services.catalogue, FEATURES_KEY)
    services.descriptors.adopt(rebuilt)
    log.info("descriptor index retrained for %d descriptors", services.descriptors.size)
    return True


def _photo_descriptors(photo_id: int, blob: bytes) -> np.ndarray:
    from models.local_features import LocalFeatures, matching_descriptors

    try:
        return matching_descriptors(LocalFeatures.from_bytes(blob))
    except ArtmatchError as exc:
        # Held with no descriptors: never found, and the next start does not rebuild again.
        log.warning("photo %d: stored local features unreadable (%s); not indexed", photo_id, exc)
        return np.zeros((0, 128), dtype=np.float32)


def _spread(ids: list[int], count: int) -> list[int]:
    """About ``count`` of ``ids``, evenly spread."""
    return ids[:: max(1, len(ids) // max(count, 1))]


def _training_sample(
    index: DescriptorIndex, catalogue: Catalogue, method: str, ids: list[int]
) -> tuple[np.ndarray, int]:
    """Descriptors of photos spread over the catalogue, as many as ``index`` wants to train
    for the expected total (`DescriptorIndex.training_points`), and that total.

    `TRAIN_PHOTOS` photos estimate the descriptors per photo. They alone once trained every
    rebuild: at 1.48M descriptors their 74k points capped the index at 1,024 lists of ~1,450
    descriptors, which tripled query time; the sample now grows to what the lists need."""
    chosen = _spread(ids, TRAIN_PHOTOS)
    parts = [
        _photo_descriptors(pid, blob)
        for pid, blob in catalogue.local_features(chosen, method).items()
    ]
    per_photo = max(sum(len(p) for p in parts) / max(len(parts), 1), 1.0)
    expected = round(per_photo * len(ids))
    wanted = index.training_points(expected)
    photos = min(len(ids), math.ceil(1.1 * wanted / per_photo))
    if photos > len(chosen):
        more = sorted(set(_spread(ids, photos)) - set(chosen))
        parts += [
            _photo_descriptors(pid, blob)
            for pid, blob in catalogue.local_features(more, method).items()
        ]
    return np.concatenate(parts), expected


def _fill_descriptor_index(index: DescriptorIndex, catalogue: Catalogue, method: str) -> None:
    """Train ``index`` on photos spread over the catalogue, then add every photo's
    descriptors, a batch of stored features at a time."""
    ids = catalogue.local_feature_ids(method)
    if not ids:
        return
    sample, expected = _training_sample(index, catalogue, method, ids)
    index.train(sample, expected=expected)
    del sample
    for batch in catalogue.iter_local_features(method):
        for photo_id, blob in batch:
            index.add(photo_id, _photo_descriptors(photo_id, blob))


def build_services(settings: Settings, *, embedder: Embedder | None = None) -> Services:
    """Open the catalogue, blob store, embedder and index named by ``settings``."""
    from models.embedders import create_embedder
    from models.images import configure_decoding

    # Every process (service, worker, CLI) builds its services here: the decode bound is
    # process-wide, so this is where it takes the settings' figures.
    configure_decoding(
        max_bytes=settings.max_decode_bytes, max_concurrent=settings.max_concurrent_decodes
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    catalogue = create_catalogue(settings.database_url)
    blobs = create_blob_store(settings)
    embedder = embedder or create_embedder(settings.embedder)
    index, rebuilt = open_index(settings, catalogue, embedder, blobs=blobs)
    descriptors, _ = open_descriptor_index(settings, catalogue)
    return Services(
        settings=settings,
        catalogue=catalogue,
        blobs=blobs,
        embedder=embedder,
        index=index,
        descriptors=descriptors,
        index_rebuilt=rebuilt,
        descriptors_saved_version=descriptors.meta.version,
        # What was loaded or just rebuilt matches the blob store's snapshot (or needs none).
        snapshot_version=index.meta.version,
    )
