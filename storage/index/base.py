"""The vector index seam: the `VectorIndex` protocol, its metadata and the id fingerprint.

An index is keyed by photo id and holds unit vectors of one model version. Implementations
live one per module (`storage.index.faiss_flat`, `storage.index.memory`) and are chosen by
name through `storage.index.registry`.

The index is derived data. Its metadata records the model version and a fingerprint of the
catalogue's vectors; `engine.services.open_index` rebuilds it from the catalogue whenever the
saved one is missing, unreadable, of another model, or stale, instead of trusting it.

Several processes may share one index directory (the service, a CLI import, a worker). Saved
metadata carries the catalogue version the index reflects (`IndexMeta.catalogue_version`,
`storage.catalogue.index_state`); a save takes an exclusive lock on ``<stem>.lock`` beside the
files and is skipped when the file already saved reflects a newer version
(`saved_catalogue_version`), so a process that fell behind never overwrites a newer index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from kernel.errors import InvalidInput
from storage.index.filters import IdFilter

__all__ = [
    "IndexMeta",
    "IndexType",
    "VectorIndex",
    "check_batch",
    "fingerprint_ids",
    "index_stem",
    "saved_catalogue_version",
]


def fingerprint_ids(ids: np.ndarray | Sequence[int]) -> str:
    """A short digest of a set of photo ids: equal sets, equal fingerprints."""
    arr = np.unique(np.asarray(ids, dtype=np.int64))
    return f"{len(arr)}-{hashlib.sha256(arr.tobytes()).hexdigest()[:16]}"


def index_stem(model: str, model_version: str) -> str:
    """A file-name-safe name for one model version's index (files, snapshot prefixes)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{model}__{model_version}")
    return safe[:180]


@dataclass
class IndexMeta:
    model: str
    model_version: str
    dim: int
    fingerprint: str = ""
    #: Bumped on every change; search results report it.
    version: int = 0
    #: The catalogue's index version (`storage.catalogue.index_state`) this index reflects.
    catalogue_version: int = 0


def saved_catalogue_version(meta_file: Path) -> int:
    """The ``catalogue_version`` a saved index's metadata file records; 0 when the file is
    missing, unreadable or older than the field (any save may replace such a file)."""
    try:
        value = json.loads(meta_file.read_bytes()).get("catalogue_version", 0)
        return int(value)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


@runtime_checkable
class VectorIndex(Protocol):
    meta: IndexMeta

    @property
    def size(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def ids(self) -> np.ndarray:
        """Every photo id in the index."""

    def remove(self, ids: Sequence[int] | np.ndarray) -> int: ...

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: IdFilter | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each ``(len(queries), k)``; missing slots have id -1. With
        ``allowed_ids`` (an `IdFilter`, reused across queries, or plain ids) only those."""

    def save(self) -> None:
        """Persist the index where it was created or loaded from (if it persists at all)."""

    def to_bytes(self) -> bytes:
        """The vectors and ids, serialised (snapshots); `IndexType.from_bytes` reads them."""


class IndexType(Protocol):
    """What the registry needs of an index class: ways to make, load and deserialise one."""

    def create(self, *, directory: Path, meta: IndexMeta) -> VectorIndex:
        """A new, empty index that saves under ``directory``."""

    def load(self, directory: Path, *, model: str, model_version: str) -> VectorIndex:
        """The index saved under ``directory``; `IndexNotReady` if missing or inconsistent."""

    def from_bytes(self, data: bytes, *, directory: Path, meta: IndexMeta) -> VectorIndex:
        """An index from `VectorIndex.to_bytes` output; `IndexNotReady` if unreadable."""


def check_batch(ids: np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` as int64 and ``vectors`` as contiguous float32, or `InvalidInput`."""
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(ids) != len(vectors):
        raise InvalidInput(
            f"expected {len(ids)} vectors of dimension {dim}, got an array of shape {vectors.shape}"
        )
    return ids, vectors
