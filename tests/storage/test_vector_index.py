from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kernel.errors import IndexNotReady, InvalidInput
from storage.index.base import IndexMeta, saved_catalogue_version
from storage.index.faiss_flat import FaissVectorIndex
from storage.index.memory import MemoryVectorIndex


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(params=["faiss", "memory"])
def index(request: pytest.FixtureRequest, tmp_path: Path):
    meta = IndexMeta(model="m", model_version="1", dim=8)
    return FaissVectorIndex(tmp_path, meta) if request.param == "faiss" else MemoryVectorIndex(meta)


def test_add_search_remove_filter(index) -> None:
    vecs = _unit(20, 8)
    ids = np.arange(100, 120)
    index.add(ids, vecs)
    scores, found = index.search(vecs[3], 3)
    assert found[0, 0] == 103
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    _, found = index.search(vecs[3], 2, allowed_ids=np.array([110, 111]))
    assert set(found[0]) == {110, 111}
    assert index.remove([103]) == 1
    _, found = index.search(vecs[3], 1)
    assert found[0, 0] != 103
    scores, found = index.search(vecs[3], 2, allowed_ids=np.array([], dtype=np.int64))
    assert (found == -1).all()


def test_wrong_dimension_is_refused(index) -> None:
    with pytest.raises(InvalidInput, match="dimension 8"):
        index.add(np.array([1]), np.zeros((1, 4), np.float32))


def test_faiss_round_trip_and_corruption(tmp_path: Path) -> None:
    index = FaissVectorIndex(
        tmp_path, IndexMeta(model="m", model_version="1", dim=8, fingerprint="f")
    )
    vecs = _unit(5, 8)
    index.add(np.arange(5), vecs)
    index.save()
    loaded = FaissVectorIndex.load(tmp_path, model="m", model_version="1")
    assert loaded.size == 5 and loaded.meta.fingerprint == "f"
    assert loaded.search(vecs[2], 1)[1][0, 0] == 2
    with pytest.raises(IndexNotReady):
        FaissVectorIndex.load(tmp_path, model="m", model_version="2")
    (tmp_path / "m__1.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexNotReady):
        FaissVectorIndex.load(tmp_path, model="m", model_version="1")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_save_never_replaces_an_index_of_a_newer_catalogue_version(tmp_path: Path) -> None:
    # Two processes' copies of one index: the first caught up to catalogue version 5 and saved.
    newer = FaissVectorIndex(tmp_path, IndexMeta("m", "1", dim=8, catalogue_version=5))
    newer.add(np.arange(1, 4), _unit(3, 8))
    newer.save()
    older = FaissVectorIndex(tmp_path, IndexMeta("m", "1", dim=8, catalogue_version=3))
    older.add(np.array([1]), _unit(1, 8))
    older.save()  # skipped: what is on disk reflects more of the catalogue
    loaded = FaissVectorIndex.load(tmp_path, model="m", model_version="1")
    assert sorted(loaded.ids()) == [1, 2, 3] and loaded.meta.catalogue_version == 5
    # Caught up (same or later version), it saves.
    older.meta.catalogue_version = 6
    older.save()
    loaded = FaissVectorIndex.load(tmp_path, model="m", model_version="1")
    assert list(loaded.ids()) == [1] and loaded.meta.catalogue_version == 6


def test_metadata_saved_before_catalogue_versions_loads(tmp_path: Path) -> None:
    index = FaissVectorIndex(tmp_path, IndexMeta("m", "1", dim=8))
    index.save()
    meta_file = tmp_path / "m__1.json"
    raw = json.loads(meta_file.read_text())
    del raw["catalogue_version"]
    meta_file.write_text(json.dumps(raw))
    assert FaissVectorIndex.load(tmp_path, model="m", model_version="1").meta.catalogue_version == 0
    assert saved_catalogue_version(meta_file) == 0
    assert saved_catalogue_version(tmp_path / "missing.json") == 0
