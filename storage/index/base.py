"""Vector indexes keyed by photo id: FAISS on disk (default) and a numpy twin for tests.

The index is derived data. Its metadata records the model version and a fingerprint of the
catalogue's vectors; `open_index` rebuilds it from the catalogue whenever the file is missing,
unreadable, of another model, or stale, instead of trusting it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import faiss
import numpy as np

from kernel.errors import IndexNotReady, InvalidInput

__all__ = ["FaissVectorIndex", "IndexMeta", "MemoryVectorIndex", "VectorIndex", "fingerprint_ids"]


def fingerprint_ids(ids: np.ndarray | Sequence[int]) -> str:
    """A short digest of a set of photo ids: equal sets, equal fingerprints."""
    arr = np.unique(np.asarray(ids, dtype=np.int64))
    return f"{len(arr)}-{hashlib.sha256(arr.tobytes()).hexdigest()[:16]}"


@dataclass
class IndexMeta:
    model: str
    model_version: str
    dim: int
    fingerprint: str = ""
    #: Bumped on every change; search results report it.
    version: int = 0


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
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each ``(len(queries), k)``; missing slots have id -1."""

    def save(self) -> None: ...


def _check(ids: np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(ids) != len(vectors):
        raise InvalidInput(
            f"expected {len(ids)} vectors of dimension {dim}, got an array of shape {vectors.shape}"
        )
    return ids, vectors


class FaissVectorIndex:
    """Exact inner-product search (vectors are unit length, so scores are cosines).

    Exact search is fast enough to ~1M photos on one CPU and never misses a neighbour; an
    approximate index would be a drop-in change here.
    """

    def __init__(self, directory: Path, meta: IndexMeta) -> None:
        self.directory = Path(directory)
        self.meta = meta
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(meta.dim))

    @staticmethod
    def stem(model: str, model_version: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{model}__{model_version}")
        return safe[:180]

    @property
    def _index_file(self) -> Path:
        return self.directory / f"{self.stem(self.meta.model, self.meta.model_version)}.faiss"

    @property
    def _meta_file(self) -> Path:
        return self._index_file.with_suffix(".json")

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = _check(ids, vectors, self.meta.dim)
        if len(ids):
            self._index.add_with_ids(vectors, ids)
            self.meta.version += 1

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        removed = int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))
        if removed:
            self.meta.version += 1
        return removed

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.meta.dim)
        params = None
        if allowed_ids is not None:
            if len(allowed_ids) == 0:
                n = len(queries)
                return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
            selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(queries, k, params=params)
        scores[ids < 0] = -np.inf
        return scores, ids

    def save(self) -> None:
        """Write index then metadata, each through a temp file and rename.

        A crash between the two leaves metadata that no longer matches; `open_index` then
        sees a stale index and rebuilds it, so a reader never trusts half a save.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(self._index_file, faiss.serialize_index(self._index).tobytes())
        meta = self.meta.__dict__ | {"ntotal": self.size}
        _atomic_write(self._meta_file, json.dumps(meta, indent=2).encode())

    @classmethod
    def load(cls, directory: Path, *, model: str, model_version: str) -> FaissVectorIndex:
        """Load a saved index; raises `IndexNotReady` if missing or inconsistent."""
        stem = cls.stem(model, model_version)
        index_file, meta_file = directory / f"{stem}.faiss", directory / f"{stem}.json"
        try:
            raw = json.loads(meta_file.read_text())
            ntotal = raw.pop("ntotal")
            meta = IndexMeta(**raw)
            index = faiss.deserialize_index(np.fromfile(index_file, dtype=np.uint8))
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise IndexNotReady(f"no usable index at {index_file}: {exc}") from None
        if meta.model != model or meta.model_version != model_version:
            raise IndexNotReady(f"index at {index_file} belongs to another model")
        if index.ntotal != ntotal or index.d != meta.dim:
            raise IndexNotReady(f"index at {index_file} does not match its metadata")
        out = cls(directory, meta)
        out._index = index
        return out


class MemoryVectorIndex:
    """Brute-force numpy twin of `FaissVectorIndex` for unit tests."""

    def __init__(self, meta: IndexMeta) -> None:
        self.meta = meta
        self._ids = np.zeros(0, dtype=np.int64)
        self._vecs = np.zeros((0, meta.dim), dtype=np.float32)
        self.saved = 0

    @property
    def size(self) -> int:
        return len(self._ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = _check(ids, vectors, self.meta.dim)
        self.remove(ids)
        self._ids = np.concatenate([self._ids, ids])
        self._vecs = np.concatenate([self._vecs, vectors])
        self.meta.version += 1

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        removed = int((~keep).sum())
        self._ids, self._vecs = self._ids[keep], self._vecs[keep]
        return removed

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.meta.dim)
        mask = (
            np.ones(len(self._ids), bool)
            if allowed_ids is None
            else np.isin(self._ids, allowed_ids)
        )
        ids, vecs = self._ids[mask], self._vecs[mask]
        out_s = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        if len(ids):
            sims = queries @ vecs.T
            order = np.argsort(-sims, axis=1)[:, :k]
            n = order.shape[1]
            out_s[:, :n] = np.take_along_axis(sims, order, axis=1)
            out_i[:, :n] = ids[order]
        return out_s, out_i

    def save(self) -> None:
        self.saved += 1


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
