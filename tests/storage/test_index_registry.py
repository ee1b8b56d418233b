"""Index types by name: the registry builds, loads and deserialises each; an unknown name is a
`ConfigError` listing the valid ones; snapshots go through `to_bytes`/`from_bytes` only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernel.errors import ConfigError, IndexNotReady
from storage.blobs import MemoryBlobStore
from storage.index.base import IndexMeta, VectorIndex
from storage.index.faiss_flat import FaissVectorIndex
from storage.index.memory import MemoryVectorIndex
from storage.index.registry import (
    available_indexes,
    create_index,
    index_from_bytes,
    load_index,
)
from storage.index.snapshots import load_snapshot, save_snapshot

DIM = 8


def _meta() -> IndexMeta:
    return IndexMeta(model="m", model_version="v1", dim=DIM)


def _filled(kind: str, directory: Path) -> VectorIndex:
    index = create_index(kind, directory=directory, meta=_meta())
    vecs = np.random.default_rng(0).normal(size=(6, DIM)).astype(np.float32)
    index.add(np.arange(10, 16), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    return index


def test_builtin_kinds() -> None:
    assert {"flat", "memory"} <= set(available_indexes())
    assert isinstance(create_index("flat", directory=Path("."), meta=_meta()), FaissVectorIndex)
    assert isinstance(create_index("memory", directory=Path("."), meta=_meta()), MemoryVectorIndex)


def test_unknown_kind_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown index kind 'hnsw'.*flat.*memory"):
        create_index("hnsw", directory=tmp_path, meta=_meta())
    with pytest.raises(ConfigError, match="flat"):
        load_index("hnsw", tmp_path, model="m", model_version="v1")


@pytest.mark.parametrize("kind", ["flat", "memory"])
def test_bytes_round_trip(kind: str, tmp_path: Path) -> None:
    index = _filled(kind, tmp_path)
    copy = index_from_bytes(kind, index.to_bytes(), directory=tmp_path, meta=_meta())
    np.testing.assert_array_equal(np.sort(copy.ids()), np.arange(10, 16))
    queries = np.eye(DIM, dtype=np.float32)[:2]
    for a, b in zip(index.search(queries, 3), copy.search(queries, 3), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(IndexNotReady):
        index_from_bytes(kind, b"garbage", directory=tmp_path, meta=_meta())
    with pytest.raises(IndexNotReady):
        other = IndexMeta(model="m", model_version="v1", dim=DIM + 1)
        index_from_bytes(kind, index.to_bytes(), directory=tmp_path, meta=other)


def test_flat_saves_and_loads_by_name(tmp_path: Path) -> None:
    _filled("flat", tmp_path).save()
    assert load_index("flat", tmp_path, model="m", model_version="v1").size == 6
    with pytest.raises(IndexNotReady):
        load_index("memory", tmp_path, model="m", model_version="v1")


@pytest.mark.parametrize("kind", ["flat", "memory"])
def test_snapshot_of_each_kind(kind: str, tmp_path: Path) -> None:
    blobs = MemoryBlobStore()
    info = save_snapshot(blobs, _filled(kind, tmp_path))
    loaded = load_snapshot(blobs, model="m", model_version="v1", directory=tmp_path, kind=kind)
    assert loaded.size == 6 and loaded.meta.fingerprint == info.fingerprint


def test_open_index_builds_the_kind_the_settings_name(tmp_path: Path) -> None:
    from engine.services import build_services
    from kernel.settings import EmbedderSettings, IndexSettings, Settings
    from models.embedders import FakeEmbedder

    def settings(kind: str) -> Settings:
        return Settings(
            home=tmp_path,
            embedder=EmbedderSettings(name="fake"),
            index=IndexSettings(kind=kind),
        )

    services = build_services(settings("memory"), embedder=FakeEmbedder())
    try:
        assert isinstance(services.index, MemoryVectorIndex) and services.index_rebuilt
    finally:
        services.close()
    with pytest.raises(ConfigError, match="unknown index kind"):
        build_services(settings("nope"), embedder=FakeEmbedder())
