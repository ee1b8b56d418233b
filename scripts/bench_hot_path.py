"""What a search pays for its filter, before and after the filter cache (issue 13).

    PYTHONPATH=. python scripts/bench_hot_path.py [--photos 100000] [--dim 256] [--queries 30]

A synthetic catalogue in a temporary SQLite file (objects of two photos each, 3 % stolen and
1 % missing, five institutions; rows inserted in bulk, no photos on disk) and a FAISS flat
index of random unit vectors; no CNN. Each query is what the search pipeline asks of the index
and the catalogue: three vectors (the photo and two centre crops), k = 40, and the mask of
4,000 local-descriptor votes. Per query it times:

- ``old``: the path before the cache, `photo_ids_where` + `count_objects_where` per query,
  the ids handed to the index as an array (a selector built from them per query), and local
  retrieval's Python set of the allowed ids;
- ``new``: `engine.search.filters.FilterCache` (one version SELECT, then the cached
  `IdFilter` with its selector, and its vectorised mask);
- ``unfiltered``: the same search without a filter (its object count cached too).

The three run interleaved, query after query, so that the machine's noise falls on each
alike; medians are printed, and the ratios are taken from them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from engine.search.filters import FilterCache
from kernel.enums import LOST_STATUSES, ObjectStatus
from storage.catalogue import Catalogue, create_catalogue
from storage.catalogue.orm import CatalogueObject, Institution, Photo
from storage.index.base import IndexMeta
from storage.index.faiss_flat import FaissVectorIndex
from storage.index.filters import IdFilter

K = 40
VIEWS = 3
VOTES = 4000
ROWS = 20_000
LOST = list(LOST_STATUSES)


def _fill(catalogue: Catalogue, photos: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    objects = photos // 2
    statuses = rng.choice(
        [ObjectStatus.STOLEN, ObjectStatus.MISSING, ObjectStatus.IN_COLLECTION],
        size=objects,
        p=[0.03, 0.01, 0.96],
    )
    with catalogue.engine.begin() as conn:
        conn.execute(insert(Institution), [{"id": i + 1, "name": f"Museum {i}"} for i in range(5)])
        for start in range(0, objects, ROWS):
            conn.execute(
                insert(CatalogueObject),
                [
                    {
                        "id": i + 1,
                        "object_id": f"obj-{i}",
                        "institution_id": i % 5 + 1,
                        "status": statuses[i],
                    }
                    for i in range(start, min(objects, start + ROWS))
                ],
            )
        for start in range(0, photos, ROWS):
            conn.execute(
                insert(Photo),
                [
                    {
                        "id": p + 1,
                        "object_pk": p // 2 + 1,
                        "sha256": f"{p:064x}",
                        "blob_key": f"p/{p}",
                        "thumbnail_key": f"t/{p}",
                        "width": 640,
                        "height": 480,
                        "format": "JPEG",
                    }
                    for p in range(start, min(photos, start + ROWS))
                ],
            )


def _index(directory: Path, photos: int, dim: int, seed: int) -> FaissVectorIndex:
    rng = np.random.default_rng(seed)
    index = FaissVectorIndex.create(
        directory=directory, meta=IndexMeta(model="bench", model_version="1", dim=dim)
    )
    for start in range(0, photos, ROWS):
        n = min(ROWS, photos - start)
        vectors = rng.normal(size=(n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.add(np.arange(start + 1, start + n + 1, dtype=np.int64), vectors)
    return index


@dataclass
class _Query:
    """One query, searched the three ways."""

    catalogue: Catalogue
    index: FaissVectorIndex
    cache: FilterCache
    queries: np.ndarray
    votes: np.ndarray
    times: dict[str, list[float]]

    def old(self) -> None:
        start = time.perf_counter()
        ids = self.catalogue.photo_ids_where(statuses=LOST)
        self.catalogue.count_objects_where(statuses=LOST)
        self.times["old sql"].append((time.perf_counter() - start) * 1000)
        self.index.search(self.queries, K, allowed_ids=ids)
        allowed = {int(i) for i in ids}
        np.isin(self.votes, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))

    def new(self) -> None:
        start = time.perf_counter()
        scope = self.cache.scope(self.catalogue, statuses=LOST)
        self.times["new sql"].append((time.perf_counter() - start) * 1000)
        assert isinstance(scope.allowed, IdFilter)
        self.index.search(self.queries, K, allowed_ids=scope.allowed)
        scope.allowed.mask(self.votes)

    def unfiltered(self) -> None:
        self.cache.scope(self.catalogue)
        self.index.search(self.queries, K)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256, help="vector dimension (the CNN's: 1280)")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from kernel.memory import keep_freed_memory
    from kernel.settings import Settings, ThreadSettings
    from kernel.threads import configure_threads

    configure_threads(ThreadSettings())  # as the service, the worker and the CLI do
    keep_freed_memory(Settings().keep_freed_mb)
    rng = np.random.default_rng(a.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = create_catalogue(f"sqlite:///{tmp}/catalogue.sqlite3")
        t0 = time.perf_counter()
        _fill(catalogue, a.photos, a.seed)
        index = _index(Path(tmp) / "index", a.photos, a.dim, a.seed)
        print(f"{a.photos:,} photos, dimension {a.dim}: built in {time.perf_counter() - t0:.1f} s")
        cache = FilterCache()
        times: dict[str, list[float]] = {k: [] for k in ("old", "old sql", "new", "new sql", "un")}
        for _ in range(a.queries):
            queries = rng.normal(size=(VIEWS, a.dim)).astype(np.float32)
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
            votes = rng.integers(1, a.photos + 1, size=VOTES)

            run = _Query(catalogue, index, cache, queries, votes, times)
            times["old"].append(_timed(run.old))
            times["new"].append(_timed(run.new))
            times["un"].append(_timed(run.unfiltered))
        catalogue.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median of {a.queries} queries (ms; the first 'new' query fills the cache):")
    print(f"  filtered, old path   {med['old']:8.1f}   of which SQL {med['old sql']:7.1f}")
    print(f"  filtered, cached     {med['new']:8.1f}   of which SQL {med['new sql']:7.1f}")
    print(f"  unfiltered, cached   {med['un']:8.1f}")
    print(f"filtered old / cached: {med['old'] / med['new']:.1f}x")
    print(f"filtered cached / unfiltered: {med['new'] / med['un']:.2f}x")
    print(f"SQL per filtered search, old / cached: {med['old sql'] / med['new sql']:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
