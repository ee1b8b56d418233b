"""``auto``: exact search while small, IVF-PQ plus an exact re-rank once large; saved as a base
plus an append-only log (`storage.index.vector_log`), so an ingest batch writes only itself.

- Up to ``exact_up_to`` photos it scores every stored vector (float32, exact: the results of
  ``flat``). Trained (`storage.index.training`: by `artmatch index train` or a rebuild, never
  inside an ingest batch's save, which only logs that training is wanted): PCA-whitened
  reduction (``pca_dim``), IVF with ~sqrt(N) lists and PQ codes of ``pq_m`` bytes; a search
  scans ``nprobe`` lists, takes ``rerank`` candidates and re-scores them exactly from the
  stored vectors. Training is wanted again once the catalogue has grown ``RETRAIN_GROWTH``
  times since.
- In RAM: the PQ codes and ids of the IVF lists (pq_m + 8 bytes per photo) and the sorted id ->
  row lookup (12 bytes); the float32 vectors stay on disk, memory-mapped, read by row for the
  re-rank. Vectors added since the last compaction are held in RAM until the next one.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kernel.errors import IndexNotReady
from storage.files import atomic_write, file_lock
from storage.index.base import IndexMeta, check_batch, index_stem, saved_catalogue_version
from storage.index.exact import exact_top_k
from storage.index.filters import IdFilter, as_filter
from storage.index.registry import register_index
from storage.index.snapshot_format import pack_arrays, unpack_arrays
from storage.index.training import (
    ENCODE_CHUNK,
    MIN_TRAIN_PHOTOS,
    pca_bytes,
    pca_from,
    reduce_with,
    train_parts,
)
from storage.index.vector_log import (
    ADD,
    REMOVE,
    Base,
    append_records,
    encode_record,
    read_base,
    read_records,
    write_base,
)

__all__ = ["RETRAIN_GROWTH", "ScalableVectorIndex", "ScaleParams"]

log = logging.getLogger(__name__)

#: Retrain once the catalogue is this many times the size the lists were trained for: lists
#: grown 4x longer make every probe 4x slower.
RETRAIN_GROWTH = 4.0


@dataclass
class ScaleParams:
    """How the index scales (`kernel.settings.IndexSettings` fields of the same names)."""

    exact_up_to: int = 50_000
    nprobe: int = 32
    pq_m: int = 32
    pca_dim: int = 256
    rerank: int = 256
    train_sample: int = 100_000
    #: Compact (rewrite the base) when the log holds more ids than this share of the index...
    compact_ratio: float = 0.02
    #: ... and at least this many.
    compact_min: int = 10_000


@dataclass
class _Disk:
    """What this process last read or wrote of the files (None: nothing yet)."""

    token: str | None = None
    log_bytes: int = 0
    log_ids: int = 0
    pending: list[bytes] = field(default_factory=list)


@register_index("auto")
class ScalableVectorIndex:
    """See the module doc. Vectors are unit length, so scores are cosines."""

    def __init__(self, directory: Path, meta: IndexMeta, params: ScaleParams | None = None):
        self.directory = Path(directory)
        self.meta = meta
        self.params = params or ScaleParams()
        self._base = np.zeros((0, meta.dim), dtype=np.float32)  # a memmap once loaded
        self._extra: list[np.ndarray] = []
        self._extra_rows = 0
        self._lk_ids = np.zeros(0, dtype=np.int64)
        self._lk_rows = np.zeros(0, dtype=np.int64)
        self._row_ids: np.ndarray | None = None  # row -> id (-1 dead), for exact search
        self._pca: faiss.VectorTransform | None = None
        self._ivf: faiss.Index | None = None
        self.trained_for = 0
        self._disk = _Disk()
        self._warned: str | None = None

    # -- the registry's constructors ---------------------------------------------------

    @classmethod
    def create(cls, *, directory: Path, meta: IndexMeta) -> ScalableVectorIndex:
        return cls(directory, meta)

    @classmethod
    def load(cls, directory: Path, *, model: str, model_version: str) -> ScalableVectorIndex:
        """Read the base (vectors memory-mapped) and replay the committed log."""
        stem = index_stem(model, model_version)
        meta_file = directory / f"{stem}.auto.json"
        try:
            with file_lock(directory / f"{stem}.lock", shared=True):
                raw = json.loads(meta_file.read_text())
                token, log_bytes = raw.pop("token"), raw.pop("log_bytes")
                params = ScaleParams(**raw.pop("params"))
                trained_for = raw.pop("trained_for")
                raw.pop("ntotal", None)
                meta = IndexMeta(**raw)
                index = cls(directory, meta, params)
                base = directory / f"{stem}.auto-{token}"
                files = read_base(str(base))
                row_ids, index._base = files.row_ids, files.vectors
                index._pca, index._ivf = files.pca, files.ivf
                records = list(read_records(Path(f"{base}.log"), log_bytes))
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise IndexNotReady(f"no usable index at {meta_file}: {exc}") from None
        if meta.model != model or meta.model_version != model_version:
            raise IndexNotReady(f"index at {meta_file} belongs to another model")
        if index._base.shape != (len(row_ids), meta.dim):
            raise IndexNotReady(f"index at {meta_file} does not match its metadata")
        index._set_lookup(row_ids)
        index.trained_for = trained_for
        for op, ids, vectors in records:
            if op == ADD:
                assert vectors is not None
                index._add(ids, vectors)
            else:
                index._remove(ids)
        index._disk = _Disk(token, log_bytes, sum(len(r[1]) for r in records))
        return index

    # -- VectorIndex ---------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self._lk_ids)

    @property
    def trained(self) -> bool:
        return self._ivf is not None

    def configure(self, params: ScaleParams) -> None:
        """Take the settings' parameters (those of a loaded file are what it was saved with)."""
        self.params = params

    def ids(self) -> np.ndarray:
        return self._lk_ids.copy()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = check_batch(ids, vectors, self.meta.dim)
        if len(ids):
            ids, first = np.unique(ids[::-1], return_index=True)  # the last of a duplicate wins
            vectors = vectors[::-1][first]
            self._add(ids, vectors)
            self._disk.pending.append(encode_record(ADD, ids, vectors))
            self.meta.version += 1

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        removed = self._remove(ids)
        if removed:
            self._disk.pending.append(encode_record(REMOVE, ids))
            self.meta.version += 1
        return removed

    def search(
        self, queries: np.ndarray, k: int, *, allowed_ids: IdFilter | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.meta.dim)
        n = len(queries)
        out_s = np.full((n, k), -np.inf, np.float32)
        out_i = np.full((n, k), -1, np.int64)
        allowed = as_filter(allowed_ids)
        if self.size == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return out_s, out_i
        if self._ivf is None:
            return self._search_exact(queries, k, allowed, out_s, out_i)
        params = faiss.SearchParametersIVF()
        params.nprobe = self.params.nprobe
        if allowed is not None:
            params.sel = allowed.selector()
        fetch = max(k, self.params.rerank)
        _, cand = self._ivf.search(self._reduce(queries), fetch, params=params)
        for i in range(n):
            found = cand[i][cand[i] >= 0]
            if not len(found):
                continue
            # In file order: the memory-mapped rows are then read front to back.
            rows = self._lk_rows[np.searchsorted(self._lk_ids, found)]
            order = np.argsort(rows)
            found, rows = found[order], rows[order]
            scores = self._gather(rows) @ queries[i]
            top = np.argsort(-scores, kind="stable")[:k]
            out_s[i, : len(top)], out_i[i, : len(top)] = scores[top], found[top]
        return out_s, out_i

    def save(self) -> None:
        """Append the changes since the last save to the log; rewrite the base instead when
        the files changed under us, the log grew past its share, or the index (re)trained.
        Skipped when the saved index reflects a newer catalogue version (see `base`).
        Never trains (minutes at a million photos, blocking the batch): logs that it should."""
        self._warn_untrained()
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self._path(".lock")):
            saved = saved_catalogue_version(self._path(".auto.json"))
            if saved > self.meta.catalogue_version:
                log.info("index not saved: the saved one reflects catalogue version %d", saved)
                return
            on_disk = self._read_disk_pointer()
            pending = sum(len(r) for r in self._disk.pending)
            same = self._disk.token is not None and on_disk == (
                self._disk.token,
                self._disk.log_bytes,
            )
            limit = max(self.params.compact_min, self.params.compact_ratio * self.size)
            if same and self._disk.log_ids + self._pending_ids() <= limit:
                if pending:
                    self._append_log()
                self._write_meta()
            else:
                self._compact()

    def to_bytes(self) -> bytes:
        rows, vectors = self._lk_ids, self._gather(self._lk_rows)
        arrays = {"ids": rows, "vectors": vectors}
        if self._ivf is not None:
            arrays["ivf"] = faiss.serialize_index(self._ivf)
        if self._pca is not None:
            arrays["pca"] = pca_bytes(self._pca)
        header = {"params": asdict(self.params), "trained_for": self.trained_for}
        return pack_arrays(header, arrays)

    @classmethod
    def from_bytes(cls, data: bytes, *, directory: Path, meta: IndexMeta) -> ScalableVectorIndex:
        try:
            header, arrays = unpack_arrays(data)
            index = cls(directory, meta, ScaleParams(**header["params"]))
            ids, vectors = check_batch(arrays["ids"], arrays["vectors"], meta.dim)
            if "pca" in arrays:
                index._pca = pca_from(arrays["pca"])
            if "ivf" in arrays:
                index._ivf = faiss.deserialize_index(arrays["ivf"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexNotReady(f"not an auto index: {exc}") from None
        index._base = vectors
        index._set_lookup(ids)
        index.trained_for = int(header["trained_for"])
        return index

    # -- training ------------------------------------------------------------------------

    def wants_training(self) -> str | None:
        """Why the index should (re)train now, or None."""
        if self._ivf is None and self.size > self._exact_up_to:
            return f"{self.size} photos, exact search up to {self._exact_up_to}"
        if self._ivf is not None and self.size > RETRAIN_GROWTH * self.trained_for:
            return f"grown from {self.trained_for} to {self.size} photos"
        if self._ivf is not None and self.size <= self._exact_up_to // 2:
            return f"shrunk to {self.size} photos: back to exact search"
        return None

    def describe(self) -> dict[str, object]:
        """What `artmatch index status` shows."""
        ivf: Any = self._ivf
        # What this process holds per photo besides the memory-mapped base vectors (on disk,
        # read by row for the re-rank; the OS page cache keeps the hot ones).
        ram = self._lk_ids.nbytes + self._lk_rows.nbytes + sum(e.nbytes for e in self._extra)
        if self._pca is not None:
            ram += self._pca.d_in * self._pca.d_out * 4
        if ivf is not None:
            ram += self.size * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4
        return {
            "photos": self.size,
            "search": "exact" if ivf is None else "ivf-pq + exact re-rank",
            "lists": 0 if ivf is None else int(ivf.nlist),
            "code_bytes": 0 if ivf is None else int(ivf.code_size),
            "reduced_to": self.meta.dim if self._pca is None else int(self._pca.d_out),
            "trained_for": self.trained_for,
            "unsaved_changes": len(self._disk.pending),
            "logged_since_compaction": self._disk.log_ids,
            "ram_bytes_per_photo": round(ram / max(self.size, 1), 1),
            "wants_training": self.wants_training() or "no",
        }

    def maybe_train(self) -> bool:
        reason = self.wants_training()
        if reason is None:
            return False
        log.info("index training: %s", reason)
        self.train()
        return True

    def train(self) -> None:
        """(Re)train on a sample of the stored vectors and re-encode every photo; exact
        (untrained) when the catalogue is within ``exact_up_to``."""
        self._pca, self._ivf, self.trained_for = None, None, self.size
        self._disk.token = None  # the base must be rewritten
        self.meta.version += 1
        if self.size <= self._exact_up_to:
            return
        rng = np.random.default_rng(0)

        def sample(count: int) -> np.ndarray:
            return self._gather(np.sort(rng.choice(self._lk_rows, size=count, replace=False)))

        p = self.params
        parts = train_parts(
            size=self.size,
            dim=self.meta.dim,
            sample=sample,
            pca_dim=p.pca_dim,
            pq_m=p.pq_m,
            train_sample=p.train_sample,
        )
        for start in range(0, self.size, ENCODE_CHUNK):
            rows = self._lk_rows[start : start + ENCODE_CHUNK]
            ids = self._lk_ids[start : start + ENCODE_CHUNK]
            parts.ivf.add_with_ids(parts.reduce(self._gather(rows)), ids)
        self._pca, self._ivf = parts.pca, parts.ivf

    @property
    def _exact_up_to(self) -> int:
        return max(self.params.exact_up_to, MIN_TRAIN_PHOTOS)

    def _warn_untrained(self) -> None:
        reason = self.wants_training()
        if reason is not None and reason != self._warned:
            log.warning("the vector index wants training (%s): run `artmatch index train`", reason)
        self._warned = reason

    # -- internals -----------------------------------------------------------------------

    def _path(self, suffix: str) -> Path:
        return self.directory / f"{index_stem(self.meta.model, self.meta.model_version)}{suffix}"

    def _reduce(self, vectors: np.ndarray) -> np.ndarray:
        return reduce_with(self._pca, vectors)

    def _set_lookup(self, row_ids: np.ndarray) -> None:
        live = np.flatnonzero(row_ids >= 0)
        order = np.argsort(row_ids[live], kind="stable")
        self._lk_ids = np.ascontiguousarray(row_ids[live][order], dtype=np.int64)
        self._lk_rows = live[order].astype(np.int64)
        self._row_ids = None

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        nb = len(self._base)
        if not self._extra_rows or (len(rows) and rows.max() < nb):
            return np.asarray(self._base[rows])
        if len(self._extra) > 1:
            self._extra = [np.concatenate(self._extra)]
        extra = self._extra[0]
        out = np.empty((len(rows), self.meta.dim), dtype=np.float32)
        in_base = rows < nb
        out[in_base] = self._base[rows[in_base]]
        out[~in_base] = extra[rows[~in_base] - nb]
        return out

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._remove(ids)
        rows = np.arange(len(ids), dtype=np.int64) + len(self._base) + self._extra_rows
        self._extra.append(vectors.copy())
        self._extra_rows += len(ids)
        pos = np.searchsorted(self._lk_ids, ids)
        self._lk_ids = np.insert(self._lk_ids, pos, ids)
        self._lk_rows = np.insert(self._lk_rows, pos, rows)
        self._row_ids = None
        if self._ivf is not None:
            self._ivf.add_with_ids(self._reduce(vectors), ids)

    def _remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids) or not self.size:
            return 0
        pos = np.clip(np.searchsorted(self._lk_ids, ids), 0, self.size - 1)
        pos = pos[self._lk_ids[pos] == ids]
        if not len(pos):
            return 0
        gone = self._lk_ids[pos]
        self._lk_ids = np.delete(self._lk_ids, pos)
        self._lk_rows = np.delete(self._lk_rows, pos)
        self._row_ids = None
        if self._ivf is not None:
            self._ivf.remove_ids(faiss.IDSelectorBatch(len(gone), faiss.swig_ptr(gone)))
        return len(gone)

    def _search_exact(
        self,
        queries: np.ndarray,
        k: int,
        allowed: IdFilter | None,
        out_s: np.ndarray,
        out_i: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._row_ids is None:
            row_ids = np.full(len(self._base) + self._extra_rows, -1, dtype=np.int64)
            row_ids[self._lk_rows] = self._lk_ids
            self._row_ids = row_ids
        blocks = [np.asarray(self._base)] if len(self._base) else []
        return exact_top_k(
            blocks=blocks + self._extra,
            row_ids=self._row_ids,
            queries=queries,
            k=k,
            allowed=allowed,
            out=(out_s, out_i),
        )

    def _pending_ids(self) -> int:
        return sum(int.from_bytes(r[5:9], "little") for r in self._disk.pending)

    def _read_disk_pointer(self) -> tuple[str, int] | None:
        try:
            raw = json.loads(self._path(".auto.json").read_bytes())
            return str(raw["token"]), int(raw["log_bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _base_name(self, token: str) -> str:
        return f"{self._path('').name}.auto-{token}"

    def _append_log(self) -> None:
        assert self._disk.token is not None
        path = self.directory / f"{self._base_name(self._disk.token)}.log"
        self._disk.log_bytes = append_records(
            path, committed=self._disk.log_bytes, records=self._disk.pending
        )
        self._disk.log_ids += self._pending_ids()
        self._disk.pending.clear()

    def _write_meta(self) -> None:
        meta = self.meta.__dict__ | {
            "ntotal": self.size,
            "token": self._disk.token,
            "log_bytes": self._disk.log_bytes,
            "params": asdict(self.params),
            "trained_for": self.trained_for,
        }
        atomic_write(self._path(".auto.json"), json.dumps(meta, indent=2).encode())

    def _compact(self) -> None:
        """Write a new base from memory (live rows only), an empty log, then the metadata;
        delete the old base's files last."""
        token = secrets.token_hex(6)
        base = self.directory / self._base_name(token)
        vectors = self._gather(self._lk_rows)
        ids = self._lk_ids.copy()
        trained = Base(ids, vectors, self._pca, self._ivf)
        write_base(str(base), ids=ids, vectors=vectors, trained=trained)
        self._disk = _Disk(token, 0, 0)
        self._write_meta()
        for old in self.directory.glob(f"{self._path('').name}.auto-*"):
            if not old.name.startswith(base.name + "."):
                old.unlink(missing_ok=True)
        del vectors
        self._base = np.load(f"{base}.vec.npy", mmap_mode="r")
        self._extra, self._extra_rows = [], 0
        self._set_lookup(ids)
