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
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

EVAL = Path("/work/shared/eval")
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
        pick = real[rng.integers(0, len(real), n)]
        noise = rng.normal(scale=0.35 / np.sqrt(real.shape[1]), size=pick.shape)
        out[start : start + n] = _unit(pick + noise.astype(np.float32))
    out[: len(real)] = real[: min(len(real), size)]
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_index(size: int, real: np.ndarray, queries: np.ndarray, workdir: Path) -> dict[str, str]:
    """Index bytes per photo, build/train time, load time, search p50/p99, recall@10 of exact,
    filtered vs unfiltered search time."""
    import faiss

    from storage.index.base import IndexMeta
    from storage.index.filters import IdFilter
    from storage.index.scalable import ScalableVectorIndex, ScaleParams

    vectors = synthetic_catalogue(real, size)
    ids = np.arange(1, size + 1, dtype=np.int64)
    directory = workdir / f"idx-{size}"
    index = ScalableVectorIndex.create(
        directory=directory, meta=IndexMeta(model="bench", model_version="1", dim=real.shape[1])
    )
    index.configure(ScaleParams())
    t0 = time.perf_counter()
    index.add(ids, vectors)
    index.save()  # trains past exact_up_to, writes the base
    build = time.perf_counter() - t0
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    loaded = ScalableVectorIndex.load(directory, model="bench", model_version="1")
    load_s = time.perf_counter() - t0
    desc = loaded.describe()
    qs = np.repeat(queries, max(1, 300 // len(queries)), axis=0)[:300]
    times = []
    got = []
    for q in qs:
        t0 = time.perf_counter()
        _, i = loaded.search(q[None], 10)
        times.append(time.perf_counter() - t0)
        got.append(i[0])
    sample = np.arange(0, len(qs), max(1, len(qs) // 50))
    exact = faiss.IndexFlatIP(real.shape[1])
    exact.add(vectors)
    _, truth = exact.search(qs[sample], 10)
    recall = np.mean([len(set(got[j]) & set(ids[truth[n]])) / 10 for n, j in enumerate(sample)])
    allowed = IdFilter(ids[np.random.default_rng(1).random(size) < 0.3])
    allowed.selector()
    ftimes = []
    for q in qs[:100]:
        t0 = time.perf_counter()
        loaded.search(q[None], 10, allowed_ids=allowed)
        ftimes.append(time.perf_counter() - t0)
    disk = sum(p.stat().st_size for p in directory.iterdir())
    return {
        "photos": f"{size:,}",
        "search": str(desc["search"]),
        "RAM B/photo": str(desc["ram_bytes_per_photo"]),
        "disk B/photo": f"{disk / size:.0f}",
        "build+train s": f"{build:.1f}",
        "load s": f"{load_s:.2f}",
        "p50 ms": f"{1000 * np.median(times):.2f}",
        "p99 ms": f"{1000 * np.percentile(times, 99):.2f}",
        "recall@10": f"{recall:.3f}",
        "filtered/unfiltered": f"{np.median(ftimes) / np.median(times[:100]):.2f}",
        "peak RSS MB": f"{max(rss_before, _rss_mb()):.0f}",
    }


SECTIONS: dict[str, Callable[..., dict[str, str]]] = {"index": bench_index}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--only", choices=sorted(SECTIONS), default=None)
    parser.add_argument("--synthetic", action="store_true", help="random base vectors (no CNN)")
    args = parser.parse_args()
    real, queries = real_vectors(synthetic=args.synthetic)
    sections = [args.only] if args.only else list(SECTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in sections:
            rows = [SECTIONS[name](int(s), real, queries, Path(tmp)) for s in args.sizes.split(",")]
            keys = list(rows[0])
            print(f"\n== {name} ==")
            print(" | ".join(keys))
            for row in rows:
                print(" | ".join(row[k] for k in keys))


if __name__ == "__main__":
    main()
