"""``memory``: a brute-force numpy twin of the FAISS index, for unit tests. Nothing persists:
`save` only counts calls, and `load` finds nothing, so `open_index` rebuilds it each start."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kernel.errors import IndexNotReady
from storage.index.base import IndexMeta, check_batch
from storage.index.filters import IdFilter, as_filter
from storage.index.registry import register_index

__all__ = ["MemoryVectorIndex"]


@register_index("memory")
class MemoryVectorIndex:
    """Brute-force numpy twin of `FaissVectorIndex` for unit tests."""

    def __init__(self, meta: IndexMeta) -> None:
        self.meta = meta
        self._ids = np.zeros(0, dtype=np.int64)
        self._vecs = np.zeros((0, meta.dim), dtype=np.float32)
        self.saved = 0

    @classmethod
    def create(cls, *, directory: Path | None = None, meta: IndexMeta) -> MemoryVectorIndex:
        return cls(meta)

    @classmethod
    def load(cls, directory: Path, *, model: str, model_version: str) -> MemoryVectorIndex:
        raise IndexNotReady("an in-memory index is never saved")

    @property
    def size(self) -> int:
        return len(self._ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = check_batch(ids, vectors, self.meta.dim)
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
        self,
        queries: np.ndarray,
        k: int,
        *,
        allowed_ids: IdFilter | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.meta.dim)
        allowed = as_filter(allowed_ids)
        mask = np.ones(len(self._ids), bool) if allowed is None else allowed.mask(self._ids)
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

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez(out, ids=self._ids, vectors=self._vecs)
        return out.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, *, directory: Path | None = None, meta: IndexMeta
    ) -> MemoryVectorIndex:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                ids, vectors = arrays["ids"], arrays["vectors"]
        except (OSError, ValueError, KeyError) as exc:
            raise IndexNotReady(f"not a memory index: {exc}") from None
        if vectors.ndim != 2 or vectors.shape[1] != meta.dim:
            raise IndexNotReady(f"vectors of shape {vectors.shape}, expected dimension {meta.dim}")
        index = cls(meta)
        index._ids, index._vecs = check_batch(ids, vectors, meta.dim)
        return index
