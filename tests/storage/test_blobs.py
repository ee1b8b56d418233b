from __future__ import annotations

import io
from pathlib import Path

import pytest

from kernel.errors import ConfigError, NotFound, StorageError
from kernel.settings import Settings, StorageSettings
from storage.blobs import LocalBlobStore, MemoryBlobStore, create_blob_store


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    return LocalBlobStore(tmp_path / "blobs") if request.param == "local" else MemoryBlobStore()


def test_put_get_exists_delete(store) -> None:
    store.put("photos/ab/abc", b"hello")
    assert store.exists("photos/ab/abc")
    assert store.get("photos/ab/abc") == b"hello"
    with store.open("photos/ab/abc") as fh:
        assert fh.read() == b"hello"
    store.put("photos/ab/abc", io.BytesIO(b"stream"))
    assert store.get("photos/ab/abc") == b"stream"
    assert list(store.keys("photos/")) == ["photos/ab/abc"]
    store.delete("photos/ab/abc")
    store.delete("photos/ab/abc")  # idempotent
    assert not store.exists("photos/ab/abc")
    with pytest.raises(NotFound):
        store.get("photos/ab/abc")


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../b", "a//b"])
def test_unsafe_keys_are_refused(store, key: str) -> None:
    with pytest.raises(StorageError):
        store.put(key, b"x")


def test_local_store_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put("a/b", b"1")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["b"]
    assert store.url("a/b").startswith("file://")


def test_unknown_backend_lists_valid_ones(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, storage=StorageSettings(backend="floppy"))
    with pytest.raises(ConfigError, match="local"):
        create_blob_store(settings)
