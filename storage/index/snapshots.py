"""Index snapshots in the blob store: a second API replica, or a restarted one, loads the
index instead of rebuilding it from every stored vector. Any index type works: a snapshot is
`VectorIndex.to_bytes`, read back with the type's ``from_bytes`` (`storage.index.registry`).

Layout, per model version (``<stem>`` is `storage.index.base.index_stem`)::

    index/<stem>/<UTC time>-<sha256 prefix>.faiss   the serialised index, never overwritten
    index/<stem>/latest.json                         pointer: key, model, fingerprint, ntotal...

The snapshot is written first and the pointer last; an S3 PUT replaces an object whole, so
swapping the pointer is the atomic step and a reader sees the old snapshot or the new one, never
half of one. Snapshot names carry the time rather than `IndexMeta.version` because the version
restarts with every rebuild, on every replica: a name must never be reused for other bytes.
Old snapshots are pruned, keeping the newest `KEEP`: a reader that has just read the previous
pointer still finds its file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from kernel.errors import IndexNotReady, NotFound, StorageError
from storage.blobs import BlobStore
from storage.index.base import IndexMeta, VectorIndex, fingerprint_ids, index_stem
from storage.index.registry import index_from_bytes

__all__ = [
    "KEEP",
    "SnapshotInfo",
    "latest_snapshot",
    "load_snapshot",
    "prune_snapshots",
    "save_snapshot",
    "snapshot_prefix",
]

log = logging.getLogger(__name__)

#: Snapshots kept per model version (the current one and the one before).
KEEP = 2
_POINTER = "latest.json"


@dataclass(frozen=True)
class SnapshotInfo:
    """What ``latest.json`` says about the current snapshot."""

    key: str
    model: str
    model_version: str
    dim: int
    fingerprint: str
    ntotal: int
    version: int
    sha256: str
    created_at: str


def snapshot_prefix(model: str, model_version: str) -> str:
    return f"index/{index_stem(model, model_version)}/"


def save_snapshot(
    blobs: BlobStore, index: VectorIndex, *, keep: int = KEEP, now: dt.datetime | None = None
) -> SnapshotInfo:
    """Write ``index`` to the blob store, then point ``latest.json`` at it; prune old ones."""
    meta = index.meta
    data = index.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    prefix = snapshot_prefix(meta.model, meta.model_version)
    info = SnapshotInfo(
        key=f"{prefix}{when:%Y%m%dT%H%M%S%f}Z-{digest[:16]}.faiss",
        model=meta.model,
        model_version=meta.model_version,
        dim=meta.dim,
        # What the index really holds, whatever its metadata was told.
        fingerprint=fingerprint_ids(index.ids()),
        ntotal=index.size,
        version=meta.version,
        sha256=digest,
        created_at=when.isoformat(),
    )
    blobs.put(info.key, data, content_type="application/octet-stream")
    blobs.put(
        prefix + _POINTER,
        json.dumps(asdict(info), indent=2).encode(),
        content_type="application/json",
    )
    prune_snapshots(blobs, meta.model, meta.model_version, keep=keep, current=info.key)
    log.info("index snapshot %s saved (%d vectors)", info.key, info.ntotal)
    return info


def latest_snapshot(blobs: BlobStore, model: str, model_version: str) -> SnapshotInfo | None:
    """The pointer of that model version's current snapshot; None when there is none."""
    key = snapshot_prefix(model, model_version) + _POINTER
    try:
        raw = json.loads(blobs.get(key))
        return SnapshotInfo(**raw)
    except NotFound:
        return None
    except (ValueError, TypeError) as exc:
        raise IndexNotReady(f"index snapshot pointer {key} is unreadable: {exc}") from None


def load_snapshot(
    blobs: BlobStore, *, model: str, model_version: str, directory: Path, kind: str = "flat"
) -> VectorIndex:
    """The latest snapshot as an index of type ``kind`` that saves under ``directory``; raises
    `IndexNotReady` if there is none, or it is damaged, of another model, or does not match
    its pointer."""
    info = latest_snapshot(blobs, model, model_version)
    if info is None:
        raise IndexNotReady(f"no index snapshot under {snapshot_prefix(model, model_version)}")
    if info.model != model or info.model_version != model_version:
        raise IndexNotReady(f"index snapshot {info.key} belongs to another model")
    try:
        data = blobs.get(info.key)
    except NotFound:
        # Pruned between our reading the pointer and the file: a newer pointer exists.
        raise IndexNotReady(f"index snapshot {info.key} is gone (replaced meanwhile)") from None
    if hashlib.sha256(data).hexdigest() != info.sha256:
        raise IndexNotReady(f"index snapshot {info.key} does not match its checksum")
    meta = IndexMeta(
        model=model,
        model_version=model_version,
        dim=info.dim,
        fingerprint=info.fingerprint,
        version=info.version,
    )
    try:
        index = index_from_bytes(kind, data, directory=directory, meta=meta)
    except IndexNotReady as exc:
        raise IndexNotReady(f"index snapshot {info.key} is unreadable: {exc}") from None
    if index.size != info.ntotal:
        raise IndexNotReady(f"index snapshot {info.key} does not match its pointer")
    if fingerprint_ids(index.ids()) != info.fingerprint:
        raise IndexNotReady(f"index snapshot {info.key} does not hold the vectors it claims")
    return index


def prune_snapshots(
    blobs: BlobStore,
    model: str,
    model_version: str,
    *,
    keep: int = KEEP,
    current: str | None = None,
) -> list[str]:
    """Delete all but the newest ``keep`` snapshots (never ``current``); returns the keys."""
    prefix = snapshot_prefix(model, model_version)
    names = sorted(k for k in blobs.keys(prefix) if k.endswith(".faiss"))
    doomed = [k for k in names[: max(len(names) - keep, 0)] if k != current]
    for key in doomed:
        try:
            blobs.delete(key)
        except StorageError as exc:  # another replica pruning at the same time, say
            log.warning("cannot prune index snapshot %s: %s", key, exc)
    return doomed
