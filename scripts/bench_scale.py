"""Scale benchmark: synthetic catalogues of 100k-1M photos built from real CNN vectors.

    PYTHONPATH=. python scripts/bench_scale.py --sizes 100000,1000000 [--only index]

The photos of /work/shared/eval are embedded once (cached under the temp dir); each synthetic
photo is a real vector plus noise, renormalised. Queries are the eval query photos' vectors.
Timings on a shared 2-core machine are noisy: medians and p99 over many queries, and the
filtered/unfiltered ratio measured in the same run. One function per section; other sections
(ingest photos/s, listings/s) go beside `bench_index` and into SECTIONS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

#: The evaluation sets beside the project (``../shared/eval``), as every developer has them.
EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
CACHE = Path(tempfile.gettempdir()) / "artmatch-bench-vectors.npz"


def real_vectors(*, synthetic: bool) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue vectors, query vectors): CNN vectors of the eval photos, cached."""
    if synthetic:
        rng = np.random.default_rng(0)
        base = rng.normal(size=(4000, 1280)).astype(np.float32)
        return _unit(base), _unit(base[:200] + 0.5 * rng.normal(size=(200, 1280)))
    if CACHE.exists():
        with np.load(CACHE) as z:
            return z["catalogue"], z["queries"]
    from kernel.settings import get_settings
    from models.embedders import create_embedder
    from models.images import decode_image

    embedder = create_embedder(get_settings().embedder)

    def embed(paths: list[Path]) -> np.ndarray:
        out = []
        for start in range(0, len(paths), 16):
            out.append(
                embedder.embed(
                    [decode_image(p.read_bytes()).image for p in paths[start : start + 16]]
                )
            )
        return np.concatenate(out).astype(np.float32)

    photos = sorted(p for p in EVAL.glob("*/catalogue/*") if p.is_file())
    photos += sorted(p for p in (EVAL / "distractors").rglob("*") if p.is_file())
    queries = sorted(p for p in EVAL.glob("*/queries/*") if p.is_file())
    cat, qs = embed(photos), embed(queries)
    np.savez(CACHE, catalogue=cat, queries=qs)
    return cat, qs


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic_catalogue(real: np.ndarray, size: int, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((size, real.shape[1]), dtype=np.float32)
    for start in range(0, size, 50_000):
        n = min(50_000, size - start)
        # A real vector plus up to half of another plus a little noise: distinct photos that
        # lie where real ones do. (Real vector plus noise alone made ~230 copies of each at a
        # million, whose order against a query was decided by the noise outside any PCA.)
        pick = real[rng.integers(0, len(real), n)]
        pick += rng.uniform(0, 0.5, (n, 1)).astype(np.float32) * real[rng.integers(0, len(real), n)]
        noise = rng.normal(scale=0.2 / np.sqrt(real.shape[1]), size=pick.shape)
        out[start : start + n] = _unit(pick + noise.astype(np.float32))
    out[: len(real)] = real[: min(len(real), size)]
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _exact_top10(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Exact top-10 rows by inner product, in chunks (no second copy of a million vectors)."""
    best_s = np.full((len(queries), 10), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 10), np.int64)
    for start in range(0, len(base), 100_000):
        sims = np.asarray(base[start : start + 100_000]) @ queries.T  # (rows, queries)
        s = np.concatenate([best_s, sims.T], axis=1)
        i = np.concatenate(
            [best_i, np.arange(start, start + len(sims))[None].repeat(len(queries), 0)], 1
        )
        top = np.argsort(-s, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return best_i


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, this process's CPU) seconds: CPU time is what the query costs when the machine is
    not shared; wall time is what the caller waited on this loaded one."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def bench_index(
    size: int, real: np.ndarray, queries: np.ndarray, workdir: Path, **tuning: list[int]
) -> list[dict[str, str]]:
    """Index bytes per photo, train time, load time, search p50/p99 (wall and CPU), recall@10
    of exact, filtered vs unfiltered search time."""
    from storage.index.base import IndexMeta
    from storage.index.scalable import ScalableVectorIndex, ScaleParams

    ids = np.arange(1, size + 1, dtype=np.int64)
    directory = workdir / f"idx-{size}"
    index = ScalableVectorIndex.create(
        directory=directory, meta=IndexMeta(model="bench", model_version="1", dim=real.shape[1])
    )
    index.configure(ScaleParams())
    index.add(ids, synthetic_catalogue(real, size))  # the index keeps the only copy
    t0 = time.perf_counter()
    index.train()  # `artmatch index train`: never inside an ingest batch's save
    train_s = time.perf_counter() - t0
    index.save()
    del index
    t0 = time.perf_counter()
    loaded = ScalableVectorIndex.load(directory, model="bench", model_version="1")
    load_s = time.perf_counter() - t0
    desc = loaded.describe()
    disk = sum(p.stat().st_size for p in directory.iterdir())
    fixed = {
        "photos": f"{size:,}",
        "search": str(desc["search"]),
        "RAM B/photo": str(desc["ram_bytes_per_photo"]),
        "disk B/photo": f"{disk / size:.0f}",
        "train s": f"{train_s:.1f}",
        "load s": f"{load_s:.2f}",
    }
    default = loaded.params
    truths: dict[str, np.ndarray] = {}  # computed once for every setting tried
    rows = []
    for nprobe in tuning.get("nprobe") or [default.nprobe]:
        for rerank in tuning.get("rerank") or [default.rerank]:
            loaded.configure(replace(default, nprobe=nprobe, rerank=rerank))
            rows.append(fixed | _measure(loaded, ids, queries, truths))
    return rows


def _measure(
    loaded: Any, ids: np.ndarray, queries: np.ndarray, truths: dict[str, np.ndarray]
) -> dict[str, str]:
    """Unfiltered and filtered (30% of the ids allowed) searches interleaved query by query,
    so page-cache and load changes hit both alike. CPU per query is the loop's process CPU
    time over its queries: the kernel counts it in ticks of milliseconds, so a per-query
    CPU median is meaningless."""
    import faiss

    from storage.index.filters import IdFilter

    size = len(ids)
    qs = np.repeat(queries, max(1, 400 // len(queries)), axis=0)[:400]
    allowed = IdFilter(ids[np.random.default_rng(1).random(size) < 0.3])
    allowed.selector()
    for q in qs[:20]:
        loaded.search(q[None], 10)  # warm-up: first page-ins of the re-rank vectors
    walls, fwalls, got = [], [], []
    cpu = fcpu = 0.0
    for q in qs:
        out: list[np.ndarray] = []
        w, c = _timed(lambda q=q, out=out: out.append(loaded.search(q[None], 10)[1][0]))
        walls.append(w)
        cpu += c
        got.append(out[0])
        w, c = _timed(lambda q=q: loaded.search(q[None], 10, allowed_ids=allowed))
        fwalls.append(w)
        fcpu += c
    sample = np.arange(0, len(qs), max(1, len(qs) // 100))
    if not truths:
        truths["top10"] = ids[_exact_top10(loaded._base, qs[sample])]
    truth = truths["top10"]
    recall = np.mean([len(set(got[j]) & set(truth[n])) / 10 for n, j in enumerate(sample)])
    stage = "-"
    if loaded.trained:
        # Where a query's CPU goes: the PCA + IVF-PQ scan alone, the rest is the re-rank.
        params = faiss.SearchParametersIVF()
        params.nprobe = loaded.params.nprobe
        fetch = loaded.params.rerank
        scan = sum(
            _timed(lambda q=q: loaded._ivf.search(loaded._reduce(q[None]), fetch, params=params))[1]
            for q in qs
        )
        stage = f"{1000 * scan / len(qs):.2f}"
    fp99, fc = np.percentile(fwalls, 99), fcpu / max(cpu, 1e-9)
    return {
        "nprobe/rerank": f"{loaded.params.nprobe}/{loaded.params.rerank}",
        "p50 ms": f"{1000 * np.median(walls):.2f}",
        "p99 ms": f"{1000 * np.percentile(walls, 99):.2f}",
        "CPU ms/query": f"{1000 * cpu / len(qs):.2f}",
        "of which scan": stage,
        "recall@10": f"{recall:.3f}",
        "filtered p50/p99 ms": f"{1000 * np.median(fwalls):.2f}/{1000 * fp99:.2f}",
        "filtered/unfiltered p50 (CPU)": f"{np.median(fwalls) / np.median(walls):.2f} ({fc:.2f})",
        "peak RSS MB": f"{_rss_mb():.0f}",
        "load avg": f"{os.getloadavg()[0]:.1f}",
    }


def query_sets() -> list[str]:
    """The eval set of each query vector, in `real_vectors`' order."""
    return [p.parts[-3] for p in sorted(p for p in EVAL.glob("*/queries/*") if p.is_file())]


def bench_real(
    size: int, real: np.ndarray, queries: np.ndarray, workdir: Path, **tuning: list[int]
) -> list[dict[str, str]]:
    """First-stage recall@10 of the trained index against exact search on the real vectors
    alone (every eval catalogue photo and distractor, no noise), per eval set's queries;
    training forced on at this size (``exact_up_to`` 0) to see what the IVF-PQ stage loses."""
    from storage.index.base import IndexMeta
    from storage.index.scalable import ScalableVectorIndex, ScaleParams

    index = ScalableVectorIndex.create(
        directory=workdir / "real",
        meta=IndexMeta(model="bench", model_version="1", dim=real.shape[1]),
    )
    index.configure(ScaleParams(exact_up_to=0))
    # seizure-lots/catalogue links to the museum's: one copy each, or ties blur the recall.
    real = np.unique(real, axis=0)
    ids = np.arange(1, len(real) + 1, dtype=np.int64)
    index.add(ids, real)
    index.train()
    truth = ids[_exact_top10(real, queries)]
    sets = np.array(query_sets())
    default = index.params
    rows = []
    for nprobe in tuning.get("nprobe") or [default.nprobe]:
        for rerank in tuning.get("rerank") or [default.rerank]:
            index.configure(replace(default, nprobe=nprobe, rerank=rerank))
            got = index.search(queries, 10)[1]
            hit = np.array([len(set(g) & set(t)) / 10 for g, t in zip(got, truth, strict=True)])
            top1 = got[:, 0] == truth[:, 0]
            for name in sorted(set(sets)):
                rows.append(
                    {
                        "set": name,
                        "catalogue": f"{len(real):,} real vectors",
                        "lists": str(index.describe()["lists"]),
                        "nprobe/rerank": f"{nprobe}/{rerank}",
                        "recall@10 of exact": f"{hit[sets == name].mean():.3f}",
                        "same top-1": f"{top1[sets == name].mean():.3f}",
                        "queries": str(int((sets == name).sum())),
                    }
                )
    return rows


SECTIONS: dict[str, Callable[..., list[dict[str, str]]]] = {
    "index": bench_index,
    "real": bench_real,
}


#: Sections that are scripts of their own: ingest photos/s, listings/s with 1 and 2 workers,
#: the local-descriptor index and the whole query at a million photos.
_SCRIPTS = {
    "ingest": ("bench_ingest.py", "--repeats", "1", "--no-queries"),
    "batch": ("bench_batch.py", "--listings", "1000", "--workers", "1,2"),
    "descriptors": ("bench_descriptors.py", "--photos", "1000000", "--perturb", "16"),
    "whole-query": ("bench_whole_query.py", "--photos", "1000000"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--only", choices=sorted(SECTIONS) + sorted(_SCRIPTS), default=None)
    parser.add_argument("--synthetic", action="store_true", help="random base vectors (no CNN)")
    parser.add_argument("--nprobe", type=int, action="append", help="search settings to try")
    parser.add_argument("--rerank", type=int, action="append")
    args = parser.parse_args()
    # As the service, worker and CLI run on main (kernel.threads): one BLAS thread. numpy's
    # GEMV of a query against the re-rank rows with 2 threads on a loaded 2-core machine
    # waited tens of ms for the second thread (measured: exact search of 2,000 vectors
    # 9 to 33 ms per query).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    sections = [args.only] if args.only else list(SECTIONS) + list(_SCRIPTS)
    for name in [s for s in sections if s in _SCRIPTS]:
        # Ingest and batch checks have benchmarks of their own: run them as they are run alone.
        print(f"\n== {name} ==", flush=True)
        here = Path(__file__).resolve().parent
        subprocess.run(
            [sys.executable, str(here / _SCRIPTS[name][0]), *_SCRIPTS[name][1:]], check=False
        )
    sections = [s for s in sections if s in SECTIONS]
    if not sections:
        return
    real, queries = real_vectors(synthetic=args.synthetic)
    if args.synthetic and "real" in sections:
        sections.remove("real")  # it needs the eval sets' vectors
    tuning = {"nprobe": args.nprobe or [], "rerank": args.rerank or []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sections:
            rows = []
            for size in args.sizes.split(",") if name != "real" else ["0"]:
                rows += SECTIONS[name](int(size), real, queries, Path(tmp), **tuning)
            keys = list(rows[0])
            print(f"\n== {name} ==")
            print(" | ".join(keys))
            for row in rows:
                print(" | ".join(row[k] for k in keys))


if __name__ == "__main__":
    main()
