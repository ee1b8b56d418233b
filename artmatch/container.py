"""The assembled parts of artmatch: built once from settings, shared by CLI, API and jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from artmatch.config import Settings
from storage.blobs import BlobStore, create_blob_store
from storage.catalogue import Catalogue, create_catalogue
from storage.vector_index import FaissVectorIndex, IndexMeta, VectorIndex, fingerprint_ids

if TYPE_CHECKING:
    from models.embedders import Embedder

__all__ = ["Services", "build_services", "open_index"]

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

    def close(self) -> None:
        self.index.save()
        self.catalogue.close()


def open_index(
    settings: Settings, catalogue: Catalogue, embedder: Embedder, *, force_rebuild: bool = False
) -> tuple[VectorIndex, bool]:
    """The saved index if it matches the catalogue, else one rebuilt from stored vectors."""
    fingerprint = catalogue.vector_fingerprint(embedder.name, embedder.version)
    if not force_rebuild:
        try:
            index = FaissVectorIndex.load(
                settings.index_path, model=embedder.name, model_version=embedder.version
            )
            # Compare what the index really holds, not what its metadata claims.
            held = fingerprint_ids(index.ids())
            if held == fingerprint:
                return index, False
            log.info("index is stale (%s != %s); rebuilding", held, fingerprint)
        except Exception as exc:  # IndexNotReady, or a file faiss cannot parse
            log.info("rebuilding index: %s", exc)
    index = FaissVectorIndex(
        settings.index_path,
        IndexMeta(model=embedder.name, model_version=embedder.version, dim=embedder.dim),
    )
    ids, vectors = catalogue.vectors(embedder.name, embedder.version)
    if len(ids):
        index.add(ids, vectors)
    index.meta.fingerprint = fingerprint
    index.save()
    return index, True


def build_services(settings: Settings, *, embedder: Embedder | None = None) -> Services:
    """Open the catalogue, blob store, embedder and index named by ``settings``."""
    from models.embedders import create_embedder

    settings.home.mkdir(parents=True, exist_ok=True)
    catalogue = create_catalogue(settings.database_url)
    blobs = create_blob_store(settings)
    embedder = embedder or create_embedder(settings.embedder)
    index, rebuilt = open_index(settings, catalogue, embedder)
    return Services(
        settings=settings,
        catalogue=catalogue,
        blobs=blobs,
        embedder=embedder,
        index=index,
        index_rebuilt=rebuilt,
    )
