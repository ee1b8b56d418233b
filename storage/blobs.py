"""Blob stores: where photo bytes and thumbnails live, content-addressed by the caller.

`BlobStore` is the seam; backends register under a name and are built from settings with
`create_blob_store`. The local directory store is the embedded default; `MemoryBlobStore` is the
in-memory twin for unit tests.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from kernel.errors import ConfigError, NotFound, StorageError

if TYPE_CHECKING:
    from kernel.settings import Settings

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "MemoryBlobStore",
    "available_blob_stores",
    "create_blob_store",
    "register_blob_store",
]


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by key. Keys are '/'-separated, e.g. ``photos/ab/abcdef...``."""

    def put(self, key: str, data: bytes | BinaryIO, *, content_type: str = ...) -> None:
        """Store ``data`` under ``key`` atomically (a reader never sees half of it)."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; raises `NotFound`."""

    def open(self, key: str) -> BinaryIO:
        """A stream of the bytes under ``key``, for large blobs; the caller closes it."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with ``prefix``."""

    def url(self, key: str) -> str:
        """Where a client can fetch the blob (a file URL locally, presigned on S3)."""


_Factory = Callable[["Settings"], BlobStore]
_REGISTRY: dict[str, _Factory] = {}


def register_blob_store(name: str) -> Callable[[_Factory], _Factory]:
    def decorator(factory: _Factory) -> _Factory:
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_blob_stores() -> list[str]:
    return sorted(_REGISTRY)


def create_blob_store(settings: Settings) -> BlobStore:
    name = settings.storage.backend
    if name not in _REGISTRY:
        # Optional backends register themselves on import.
        with contextlib.suppress(ImportError):
            import storage.s3  # noqa: F401
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown storage backend {name!r}; choose one of: {', '.join(available_blob_stores())}"
        ) from None
    return factory(settings)


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid blob key {key!r}")
    return key


class LocalBlobStore:
    """Blobs as files under one directory; writes go to a temp file then rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(
        self, key: str, data: bytes | BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                else:
                    while chunk := data.read(1 << 20):
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot write blob {key}: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {key} does not exist") from None

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {key} does not exist") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def url(self, key: str) -> str:
        return self._path(key).resolve().as_uri()


class MemoryBlobStore:
    """In-memory twin of `LocalBlobStore` for unit tests."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(
        self, key: str, data: bytes | BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> None:
        self.blobs[_check_key(key)] = bytes(data) if not hasattr(data, "read") else data.read()  # type: ignore[union-attr, arg-type]

    def get(self, key: str) -> bytes:
        try:
            return self.blobs[key]
        except KeyError:
            raise NotFound(f"blob {key} does not exist") from None

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.get(key))

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def keys(self, prefix: str = "") -> Iterator[str]:
        yield from sorted(k for k in self.blobs if k.startswith(prefix))

    def url(self, key: str) -> str:
        return f"memory://{key}"


@register_blob_store("local")
def _local(settings: Settings) -> BlobStore:
    return LocalBlobStore(settings.blob_path)


@register_blob_store("memory")
def _memory(settings: Settings) -> BlobStore:
    return MemoryBlobStore()
