"""The on-disk pieces of the ``auto`` index (`storage.index.scalable`): a base snapshot of
vectors plus an append-only log of the changes since, so a save writes only what changed.

Files, per model version (``<stem>`` is `storage.index.base.index_stem`, ``<token>`` names
one base: a new one is written by every compaction, the old files are deleted after the
metadata points at the new ones, so a reader holding the shared lock never sees half a base)::

    <stem>.auto.json                metadata: `IndexMeta`, token, committed log length, params
    <stem>.auto-<token>.ids.npy     photo id of each base row (-1: removed before compaction)
    <stem>.auto-<token>.vec.npy     float32 vectors, one row per base row (memory-mapped)
    <stem>.auto-<token>.ivf         the trained IVF-PQ index over the base (absent: exact)
    <stem>.auto-<token>.pca         the PCA whitening matrix (absent: no reduction)
    <stem>.auto-<token>.log         records appended since: add (ids, vectors) or remove (ids)

The metadata records how many log bytes are committed; bytes after that (a save that crashed
before rewriting the metadata) are ignored and cut off by the next append.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from storage.files import atomic_write
from storage.index.training import pca_bytes, pca_from

__all__ = [
    "ADD",
    "REMOVE",
    "Base",
    "LogRecord",
    "append_records",
    "encode_record",
    "read_base",
    "read_records",
    "write_base",
]

ADD, REMOVE = 1, 2
_HEAD = struct.Struct("<4sBII")  # magic, op, count, dim
_MAGIC = b"AMLG"

LogRecord = tuple[int, np.ndarray, np.ndarray | None]


def encode_record(op: int, ids: np.ndarray, vectors: np.ndarray | None = None) -> bytes:
    """One log record: header, ids, vectors (adds only), CRC32 of all of it."""
    ids = np.ascontiguousarray(ids, dtype="<i8")
    dim = 0 if vectors is None else int(vectors.shape[1])
    body = _HEAD.pack(_MAGIC, op, len(ids), dim) + ids.tobytes()
    if vectors is not None:
        body += np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    return body + struct.pack("<I", zlib.crc32(body))


def read_records(path: Path, length: int) -> Iterator[LogRecord]:
    """The records in the first ``length`` bytes of ``path``; `ValueError` if damaged."""
    if length == 0:
        return
    with path.open("rb") as fh:
        data = fh.read(length)
    if len(data) != length:
        raise ValueError(f"{path.name}: {len(data)} bytes, the metadata commits {length}")
    pos = 0
    while pos < length:
        magic, op, count, dim = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + count * 8 + count * dim * 4
        if magic != _MAGIC or op not in (ADD, REMOVE) or end + 4 > length:
            raise ValueError(f"{path.name}: damaged record at byte {pos}")
        (crc,) = struct.unpack_from("<I", data, end)
        if crc != zlib.crc32(data[pos:end]):
            raise ValueError(f"{path.name}: checksum mismatch at byte {pos}")
        start = pos + _HEAD.size
        ids = np.frombuffer(data, dtype="<i8", count=count, offset=start).astype(np.int64)
        vectors = None
        if op == ADD:
            flat = np.frombuffer(data, dtype="<f4", count=count * dim, offset=start + count * 8)
            vectors = flat.reshape(count, dim).astype(np.float32)
        yield op, ids, vectors
        pos = end + 4


def append_records(path: Path, *, committed: int, records: list[bytes]) -> int:
    """Append ``records`` after the ``committed`` bytes of ``path`` (cutting a crashed save's
    uncommitted tail), synced; returns the new length."""
    with path.open("r+b" if path.exists() else "w+b") as fh:
        fh.truncate(committed)
        fh.seek(committed)
        for record in records:
            fh.write(record)
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


@dataclass
class Base:
    """One base as read: row ids, memory-mapped vectors, the trained parts (None: exact)."""

    row_ids: np.ndarray
    vectors: np.ndarray
    pca: faiss.VectorTransform | None
    ivf: faiss.Index | None


def read_base(base: str) -> Base:
    """The files of base ``<stem>.auto-<token>`` (``base`` is that path without a suffix)."""
    pca = Path(f"{base}.pca")
    ivf = Path(f"{base}.ivf")
    return Base(
        row_ids=np.load(f"{base}.ids.npy"),
        vectors=np.load(f"{base}.vec.npy", mmap_mode="r"),
        pca=pca_from(np.fromfile(pca, dtype=np.uint8)) if pca.exists() else None,
        ivf=faiss.read_index(str(ivf)) if ivf.exists() else None,
    )


def write_base(base: str, *, ids: np.ndarray, vectors: np.ndarray, trained: Base | None) -> None:
    """Write the files of a new base, each synced, with an empty log."""
    _save_npy(Path(f"{base}.ids.npy"), ids)
    _save_npy(Path(f"{base}.vec.npy"), vectors)
    if trained is not None and trained.ivf is not None:
        atomic_write(Path(f"{base}.ivf"), bytes(faiss.serialize_index(trained.ivf)))
    if trained is not None and trained.pca is not None:
        atomic_write(Path(f"{base}.pca"), pca_bytes(trained.pca).tobytes())
    atomic_write(Path(f"{base}.log"), b"")


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.save(fh, array)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
