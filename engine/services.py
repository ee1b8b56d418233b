"""The assembled parts of artmatch: built once from settings, shared by CLI, API and jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kernel.errors import ArtmatchError
from kernel.settings import Settings
from storage.blobs import BlobStore, create_blob_store
from storage.catalogue import Catalogue, create_catalogue
from storage.descriptors.base import DescriptorIndex
from storage.index.base import IndexMeta, VectorIndex, fingerprint_ids
from storage.index.registry import create_index, index_type, load_index
from storage.index.snapshots import latest_snapshot, load_snapshot, save_snapshot

if TYPE_CHECKING:
    from models.embedders import Embedder

__all__ = ["Services", "build_services", "open_index", "snapshots_enabled"]

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    catalogue: Catalogue
    blobs: BlobStore
    embedder: Embedder
    index: VectorIndex
    #: True when `open_index` had to rebuild the index from the catalogue.
    index_rebuilt: bool = field(default=False)
    #: `IndexMeta.version` of the index as last snapshotted or loaded; None: never.
    snapshot_version: int | None = field(default=None)
    #: Every catalogue photo's local descriptors (vote-and-verify retrieval).
    descriptors: DescriptorIndex | None = field(default=None)

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

    def close(self) -> None:
        self.index.save()
        self.save_snapshot()
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


def build_services(settings: Settings, *, embedder: Embedder | None = None) -> Services:
    """Open the catalogue, blob store, embedder and index named by ``settings``."""
    from models.embedders import create_embedder

    settings.home.mkdir(parents=True, exist_ok=True)
    catalogue = create_catalogue(settings.database_url)
    blobs = create_blob_store(settings)
    embedder = embedder or create_embedder(settings.embedder)
    index, rebuilt = open_index(settings, catalogue, embedder, blobs=blobs)
    return Services(
        settings=settings,
        catalogue=catalogue,
        blobs=blobs,
        embedder=embedder,
        index=index,
        index_rebuilt=rebuilt,
        # What was loaded or just rebuilt matches the blob store's snapshot (or needs none).
        snapshot_version=index.meta.version,
    )
