"""The ``auto`` index: exact while small, IVF-PQ + re-rank past ``exact_up_to``, saved as a
base plus an append-only log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage.index.base import IndexMeta
from storage.index.faiss_flat import FaissVectorIndex
from storage.index.filters import IdFilter
from storage.index.scalable import ScalableVectorIndex, ScaleParams

DIM = 32


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _data(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(50, DIM)))
    return _unit(centres[rng.integers(0, 50, n)] + 0.4 * rng.normal(size=(n, DIM)) / 6)


def _index(tmp_path: Path, **params: float) -> ScalableVectorIndex:
    index = ScalableVectorIndex.create(
        directory=tmp_path, meta=IndexMeta(model="m", model_version="1", dim=DIM)
    )
    defaults = {"exact_up_to": 400, "pca_dim": 16, "pq_m": 8, "compact_min": 50}
    index.configure(ScaleParams(**(defaults | params)))  # type: ignore[arg-type]
    return index


def test_small_catalogue_gives_exactly_the_flat_results(tmp_path: Path) -> None:
    x = _data(300)
    index, flat = (
        _index(tmp_path),
        FaissVectorIndex.create(directory=tmp_path, meta=IndexMeta("f", "1", DIM)),
    )
    ids = np.arange(10, 310)
    index.add(ids, x)
    flat.add(ids, x)
    for allowed in (None, IdFilter(ids[::3])):
        s1, i1 = index.search(x[:7], 5, allowed_ids=allowed)
        s2, i2 = flat.search(x[:7], 5, allowed_ids=allowed)
        assert (i1 == i2).all() and np.allclose(s1, s2, atol=1e-5)
    assert not index.trained


@pytest.mark.filterwarnings("ignore")
def test_past_the_threshold_a_save_only_warns_then_train_keeps_recall_high(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x = _data(3000)
    ids = np.arange(1, 3001)
    index = _index(tmp_path)
    index.add(ids, x)
    with caplog.at_level("WARNING", logger="storage.index.scalable"):
        index.save()
        index.save()
    # An ingest batch's save never trains (minutes at scale): it stays exact and says so, once.
    assert not index.trained and index.describe()["search"] == "exact"
    assert [r.getMessage() for r in caplog.records] == [
        "the vector index wants training (3000 photos, exact search up to 512): "
        "run `artmatch index train`"
    ]
    assert (index.search(x[:3], 1)[1][:, 0] == ids[:3]).all()
    index.train()
    index.save()
    assert index.trained and index.describe()["search"] != "exact"
    assert ScalableVectorIndex.load(tmp_path, model="m", model_version="1").trained
    flat = FaissVectorIndex.create(directory=tmp_path, meta=IndexMeta("f", "1", DIM))
    flat.add(ids, x)
    queries = _unit(x[:50] + 0.05 * np.random.default_rng(1).normal(size=(50, DIM)))
    _, got = index.search(queries, 10)
    _, exact = flat.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact, strict=True)])
    assert recall >= 0.95
    allowed = IdFilter(ids[::3])
    _, filtered = index.search(queries, 10, allowed_ids=allowed)
    assert allowed.mask(filtered[filtered >= 0]).all() and (filtered[:, 0] >= 0).all()


@pytest.mark.filterwarnings("ignore")
def test_batches_append_to_the_log_and_a_reload_replays_it(tmp_path: Path) -> None:
    x = _data(1200)
    index = _index(tmp_path, compact_min=10_000)
    index.add(np.arange(1000), x[:1000])
    index.train()  # the logged batches are encoded with the trained codes
    index.save()
    base = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.vec.npy")}
    for start in range(1000, 1200, 16):
        index.add(np.arange(start, start + 16)[: 1200 - start], x[start : start + 16])
        index.save()
    index.remove([5, 1100])
    index.save()
    # The base was not rewritten: the batches went to the log.
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.vec.npy")} == base
    assert index.describe()["logged_since_compaction"] == 200 + 2
    loaded = ScalableVectorIndex.load(tmp_path, model="m", model_version="1")
    assert loaded.size == 1198 and 5 not in loaded.ids() and 1100 not in loaded.ids()
    assert loaded.trained
    assert (loaded.search(x[:20], 5)[1] == index.search(x[:20], 5)[1]).all()


@pytest.mark.filterwarnings("ignore")
def test_a_long_log_is_compacted_and_a_crashed_tail_ignored(tmp_path: Path) -> None:
    x = _data(600)
    index = _index(tmp_path, compact_min=50, compact_ratio=0.0)
    index.add(np.arange(500), x[:500])
    index.save()
    index.add(np.arange(500, 560), x[500:560])  # 60 > 50: compacted
    index.save()
    assert index.describe()["logged_since_compaction"] == 0
    assert len(list(tmp_path.glob("*.vec.npy"))) == 1
    index.add(np.arange(560, 570), x[560:570])
    index.save()
    log_file = next(tmp_path.glob("*.log"))
    with log_file.open("ab") as fh:
        fh.write(b"half a record")  # a save that died before its metadata
    loaded = ScalableVectorIndex.load(tmp_path, model="m", model_version="1")
    assert loaded.size == 570


@pytest.mark.filterwarnings("ignore")
def test_snapshot_bytes_round_trip_and_a_process_behind_never_overwrites(tmp_path: Path) -> None:
    x = _data(800)
    index = _index(tmp_path)
    index.add(np.arange(800), x)
    index.meta.catalogue_version = 5
    index.train()
    index.save()
    copy = ScalableVectorIndex.from_bytes(index.to_bytes(), directory=tmp_path, meta=index.meta)
    assert copy.trained and (copy.search(x[:9], 4)[1] == index.search(x[:9], 4)[1]).all()
    behind = _index(tmp_path)
    behind.meta.catalogue_version = 4
    behind.save()
    assert ScalableVectorIndex.load(tmp_path, model="m", model_version="1").size == 800
