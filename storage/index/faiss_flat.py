"""``flat``: exact inner-product search with FAISS, saved as files (the default index type).

Exact search is fast enough to ~1M photos on one CPU and never misses a neighbour; an
approximate index would be another module registered under another name (see
`storage.index.registry`).

Files, per model version (``<stem>`` is `storage.index.base.index_stem`)::

    <directory>/<stem>.faiss   the serialised FAISS index
    <directory>/<stem>.json    `IndexMeta` and the number of vectors
    <directory>/<stem>.lock    taken by every save (exclusive) and load (shared)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from kernel.errors import IndexNotReady
from storage.files import atomic_write, file_lock
from storage.index.base import IndexMeta, check_batch, index_stem, saved_catalogue_version
from storage.index.filters import IdFilter, as_filter
from storage.index.registry import register_index

__all__ = ["FaissVectorIndex"]

log = logging.getLogger(__name__)


@register_index("flat")
class FaissVectorIndex:
    """Exact inner-product search (vectors are unit length, so scores are cosines)."""

    def __init__(
        self, directory: Path, meta: IndexMeta, *, faiss_index: faiss.IndexIDMap2 | None = None
    ) -> None:
        """A new, empty index; with ``faiss_index``, that one (already read and checked)."""
        self.directory = Path(directory)
        self.meta = meta
        if faiss_index is None:
            faiss_index = faiss.IndexIDMap2(faiss.IndexFlatIP(meta.dim))
        self._index: faiss.IndexIDMap2 = faiss_index

    @classmethod
    def create(cls, *, directory: Path, meta: IndexMeta) -> FaissVectorIndex:
        return cls(directory, meta)

    @staticmethod
    def stem(model: str, model_version: str) -> str:
        return index_stem(model, model_version)

    @property
    def _index_file(self) -> Path:
        return self.directory / f"{self.stem(self.meta.model, self.meta.model_version)}.faiss"

    @property
    def _meta_file(self) -> Path:
        return self._index_file.with_suffix(".json")

    @property
    def _lock_file(self) -> Path:
        return self._index_file.with_suffix(".lock")

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = check_batch(ids, vectors, self.meta.dim)
        if len(ids):
            self._index.add_with_ids(vectors, ids)
            self.meta.version += 1

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        # faiss's Python layer turns the array into an IDSelectorBatch; its stubs only know that.
        removed = int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))  # type: ignore[arg-type]
        if removed:
            self.meta.version += 1
        return removed

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        allowed_ids: IdFilter | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.meta.dim)
        params = None
        allowed = as_filter(allowed_ids)
        if allowed is not None:
            if len(allowed) == 0:
                n = len(queries)
                return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
            # SWIG takes ``sel`` as a keyword; the stubs do not list it.
            params = faiss.SearchParameters(sel=allowed.selector())  # type: ignore[call-arg]
        scores, ids = self._index.search(queries, k, params=params)
        scores[ids < 0] = -np.inf
        return scores, ids

    def to_bytes(self) -> bytes:
        return bytes(faiss.serialize_index(self._index).tobytes())

    @classmethod
    def from_bytes(cls, data: bytes, *, directory: Path, meta: IndexMeta) -> FaissVectorIndex:
        try:
            index = _read(np.frombuffer(data, dtype=np.uint8))
        except (RuntimeError, TypeError) as exc:
            raise IndexNotReady(f"not a FAISS index: {exc}") from None
        if index.d != meta.dim:
            raise IndexNotReady(f"vectors of dimension {index.d}, expected {meta.dim}")
        return cls(directory, meta, faiss_index=index)

    def save(self) -> None:
        """Write index then metadata, each through a temp file and rename.

        A crash between the two leaves metadata that no longer matches; `open_index` then
        sees a stale index and rebuilds it, so a reader never trusts half a save. Skipped
        when the saved index reflects a newer catalogue version than this one (another
        process saved it since this one last caught up; see the module doc of `base`).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self._lock_file):
            saved = saved_catalogue_version(self._meta_file)
            if saved > self.meta.catalogue_version:
                log.info(
                    "index not saved: the saved one reflects catalogue version %d, this one %d",
                    saved,
                    self.meta.catalogue_version,
                )
                return
            atomic_write(self._index_file, self.to_bytes())
            meta = self.meta.__dict__ | {"ntotal": self.size}
            atomic_write(self._meta_file, json.dumps(meta, indent=2).encode())

    @classmethod
    def load(cls, directory: Path, *, model: str, model_version: str) -> FaissVectorIndex:
        """Load a saved index; raises `IndexNotReady` if missing or inconsistent."""
        stem = cls.stem(model, model_version)
        index_file, meta_file = directory / f"{stem}.faiss", directory / f"{stem}.json"
        try:
            # Shared: a save in another process never swaps the pair between the two reads.
            with file_lock(directory / f"{stem}.lock", shared=True):
                raw = json.loads(meta_file.read_text())
                index = _read(np.fromfile(index_file, dtype=np.uint8))
            ntotal = raw.pop("ntotal")
            meta = IndexMeta(**raw)
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise IndexNotReady(f"no usable index at {index_file}: {exc}") from None
        if meta.model != model or meta.model_version != model_version:
            raise IndexNotReady(f"index at {index_file} belongs to another model")
        if index.ntotal != ntotal or index.d != meta.dim:
            raise IndexNotReady(f"index at {index_file} does not match its metadata")
        return cls(directory, meta, faiss_index=index)


def _read(data: np.ndarray) -> faiss.IndexIDMap2:
    index = faiss.deserialize_index(data)
    if not isinstance(index, faiss.IndexIDMap2):
        raise TypeError(f"a {type(index).__name__}, not an IndexIDMap2")
    return index
