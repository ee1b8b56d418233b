"""The local-descriptor index at a national registry's size: vote and verify against 1M photos.

    PYTHONPATH=. python scripts/bench_descriptors.py --photos 1000000

The real catalogue is every museum-paintings catalogue photo plus the 3,695 distractors of
../shared/eval, their stored-grade features extracted once (cached in the temp dir, about
5 minutes on 2 cores). The index is the one a rebuild would make for ``--photos`` photos of
~740 descriptors (`storage.descriptors.faiss_index`: the compact layout at a million): trained
on the real descriptors, the real photos added through `FaissDescriptorIndex.add`. The other
photos are synthetic and never touch a CNN or SIFT: each holds `COMPACT_PER_PHOTO` entries
copied from random real entries (their list and PQ code) with ``--perturb`` of the 16 code
bytes replaced at random, so that they crowd the lists and contest the ratio test like real
descriptors without being copies. They have no stored features, so they are never verified.

Queries are the seizure-lot photos (every object in a cluttered photo) and the museum query
photos (one or two paintings), with the service's query features. Per query it times
`engine.search.local.vote_and_verify` (the descriptor search, the vote, and the RANSAC fits of
the top photos), and counts the catalogue objects it verifies against the ground truth, first
with the real photos alone, then with the index filled to ``--photos``. It prints the memory
and file bytes per photo, the save and load times, and the figures per query set.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import faiss
import numpy as np

from engine.search.local import vote_and_verify
from models.images import decode_image
from models.local_features import (
    FEATURES_KEY,
    LocalFeatures,
    extract_local_features,
    extract_query_features,
    matching_descriptors,
)
from storage.descriptors import faiss_index
from storage.descriptors.base import MAX_PER_PHOTO, DescriptorMeta
from storage.descriptors.faiss_index import FaissDescriptorIndex

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
CACHE = Path(tempfile.gettempdir()) / "artmatch-bench-descriptors.npz"
#: Descriptors per photo a rebuild estimates for the plan (museum-paintings' mean is ~740).
PLANNED_PER_PHOTO = 740


def _catalogue_features(path: Path) -> bytes:
    import cv2

    cv2.setNumThreads(1)
    return extract_local_features(decode_image(path.read_bytes()).to_array()).to_bytes()


def _query_features(path: Path) -> bytes:
    import cv2

    cv2.setNumThreads(1)
    return extract_query_features(decode_image(path.read_bytes()).to_array()).to_bytes()


def real_catalogue() -> tuple[list[bytes], list[str], list[tuple[str, bytes, list[str]]]]:
    """(features per real photo, object id per real photo, (set, query features, objects))."""
    if CACHE.exists():
        with np.load(CACHE, allow_pickle=True) as z:
            return list(z["features"]), list(z["objects"]), [tuple(q) for q in z["queries"]]
    museum = EVAL / "museum-paintings"
    with open(museum / "catalogue.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = [museum / row["image"] for row in rows]
    objects = [row["object_id"] for row in rows]
    distractors = sorted(p for p in (EVAL / "distractors").rglob("*") if p.is_file())
    paths += distractors
    objects += [f"distractor:{p.name}" for p in distractors]
    queries: list[tuple[str, Path, list[str]]] = []
    for name in ("seizure-lots", "museum-paintings"):
        truth = json.loads((EVAL / name / "ground_truth.json").read_text())["queries"]
        queries += [(name, EVAL / name / q["image"], list(q["objects"])) for q in truth]
    print(f"extracting features of {len(paths):,} photos and {len(queries)} queries", flush=True)
    with ProcessPoolExecutor(2) as pool:
        features = list(pool.map(_catalogue_features, paths, chunksize=16))
        query_features = list(pool.map(_query_features, [q[1] for q in queries], chunksize=4))
    out = [(s, f, objs) for (s, _, objs), f in zip(queries, query_features, strict=True)]
    np.savez(
        CACHE,
        features=np.array(features, dtype=object),
        objects=np.array(objects, dtype=object),
        queries=np.array(out, dtype=object),
    )
    return features, objects, out


class _Stored:
    """The stored features of the real photos (ids 0..n-1); synthetic photos have none."""

    def __init__(self, blobs: list[bytes]) -> None:
        self.blobs = blobs

    def local_features(self, photo_ids: Iterable[int], method: str) -> dict[int, bytes]:
        return {p: self.blobs[p] for p in photo_ids if 0 <= p < len(self.blobs)}


def _rss_gb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e9


def run_queries(
    index: FaissDescriptorIndex,
    stored: _Stored,
    objects: list[str],
    queries: list[tuple[str, bytes, list[str]]],
) -> dict[str, dict[str, float]]:
    """Per query set: vote-and-verify time p50/p95 (ms), objects found / objects, wrong."""
    results: dict[str, dict[str, list[float]]] = {}
    for name, blob, truth in queries:
        features = LocalFeatures.from_bytes(blob)
        t0 = time.perf_counter()
        found = vote_and_verify(index, stored, features)
        elapsed = time.perf_counter() - t0
        named = {objects[i.photo_id] for i in found}
        r = results.setdefault(name, {"ms": [], "found": [], "objects": [], "wrong": []})
        r["ms"].append(elapsed * 1000)
        r["found"].append(len(named & set(truth)))
        r["objects"].append(len(truth))
        # A lot also shows unrelated items made from distractor photos, which are catalogue
        # photos here: finding one is right, so only a painting not in the photo is wrong.
        r["wrong"].append(len({o for o in named - set(truth) if not o.startswith("distractor:")}))
    return summarise(results)


def summarise(results: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Per query set: p50/p95 of its ``ms`` and the sums of its counts."""
    return {
        name: {
            "queries": len(r["ms"]),
            "p50_ms": statistics.median(r["ms"]),
            "p95_ms": float(np.percentile(r["ms"], 95)),
            "found": sum(r["found"]),
            "objects": sum(r["objects"]),
            "wrong": sum(r["wrong"]),
        }
        for name, r in results.items()
    }


def fill(index: FaissDescriptorIndex, first_id: int, photos: int, *, perturb: int) -> None:
    """Add ``photos`` synthetic photos (ids from ``first_id``), each `COMPACT_PER_PHOTO`
    entries (`COMPACT_PER_PHOTO`) drawn from the real entries with ``perturb`` code bytes
    replaced."""
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index._index))
    invlists = faiss.downcast_InvertedLists(ivf.invlists)
    nlist, code_size = ivf.nlist, ivf.code_size
    sizes = np.array([invlists.list_size(i) for i in range(nlist)], dtype=np.int64)
    codes = np.concatenate(
        [
            faiss.rev_swig_ptr(invlists.get_codes(i), int(sizes[i]) * code_size)
            .copy()
            .reshape(-1, code_size)
            for i in range(nlist)
            if sizes[i]
        ]
    )
    lists = np.repeat(np.arange(nlist), sizes)
    per, chunk = faiss_index.COMPACT_PER_PHOTO, 20_000

    def draws(seed: int, n: int) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, len(codes), n * per)

    chunks = [(start, min(chunk, photos - start)) for start in range(0, photos, chunk)]
    # One allocation per list: count first, then resize once and write in place.
    extra = np.zeros(nlist, dtype=np.int64)
    for start, n in chunks:
        extra += np.bincount(lists[draws(start, n)], minlength=nlist)
    offset = sizes.copy()
    for i in np.flatnonzero(extra):
        invlists.resize(int(i), int(sizes[i] + extra[i]))
    t0 = time.perf_counter()
    for start, n in chunks:
        pick = draws(start, n)
        rng = np.random.default_rng(10**9 + start)
        block = codes[pick]
        rows = np.arange(len(block))[:, None]
        cols = rng.integers(0, code_size, (len(block), perturb))
        block[rows, cols] = rng.integers(0, 256, (len(block), perturb), dtype=np.uint8)
        labels = (first_id + start + np.arange(len(block)) // per) * MAX_PER_PHOTO + (
            np.arange(len(block)) % per
        )
        order = np.argsort(lists[pick], kind="stable")
        where, block, labels = lists[pick][order], block[order], labels[order].astype(np.int64)
        bounds = np.searchsorted(where, np.arange(nlist + 1))
        for i in np.flatnonzero(np.diff(bounds)):
            s, e = int(bounds[i]), int(bounds[i + 1])
            invlists.update_entries(
                int(i),
                int(offset[i]),
                e - s,
                faiss.swig_ptr(labels[s:e]),
                faiss.swig_ptr(block[s:e]),
            )
            offset[i] += e - s
        if (start // chunk) % 10 == 0:
            print(f"  filled {start + n:,} photos ({time.perf_counter() - t0:.0f} s)", flush=True)
    ivf.ntotal = index._index.ntotal = int(offset.sum())


def trained_index(
    directory: Path, photos: int, sample: np.ndarray, *, augment: bool
) -> FaissDescriptorIndex:
    """An empty index planned as a rebuild plans it for ``photos`` photos, trained on
    ``sample``. With ``augment``, a sample short of the points the planned lists want is
    topped up with noisy copies of its own descriptors, so that the lists are as many (and as
    short) as a real catalogue of that size would train; without, fewer lists are trained."""
    index = FaissDescriptorIndex.create(directory=directory, meta=DescriptorMeta(FEATURES_KEY))
    planned = photos * PLANNED_PER_PHOTO
    want = index.training_points(planned)
    rng = np.random.default_rng(0)
    if len(sample) >= want:
        train = sample[np.sort(rng.choice(len(sample), want, replace=False))]
    elif augment:
        extra = sample[rng.integers(0, len(sample), want - len(sample))]
        extra = extra + rng.normal(scale=0.02, size=extra.shape).astype(np.float32)
        train = np.vstack([sample, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    else:
        train = sample
    t0 = time.perf_counter()
    index.train(train, expected=planned)
    print(
        f"trained for {planned:,} descriptors on {len(train):,} ({len(sample):,} real): "
        f"{index.layout}, {index.lists:,} lists, {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--perturb", type=int, default=4, help="code bytes replaced (of 16)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--per-photo", type=int, default=faiss_index.COMPACT_PER_PHOTO)
    parser.add_argument("--nprobe", type=int, default=faiss_index.COMPACT_NPROBE)
    parser.add_argument(
        "--query-descriptors", type=int, default=faiss_index.COMPACT_QUERY_DESCRIPTORS
    )
    parser.add_argument(
        "--real-only", action="store_true", help="plan for --photos, add only the real ones"
    )
    parser.add_argument(
        "--augment", action="store_true", help="top the training sample up (trained_index)"
    )
    args = parser.parse_args()
    # Settings to compare against the defaults (module constants, read at every add/search).
    faiss_index.COMPACT_PER_PHOTO, faiss_index.COMPACT_NPROBE = args.per_photo, args.nprobe
    faiss_index.COMPACT_QUERY_DESCRIPTORS = args.query_descriptors
    faiss.omp_set_num_threads(2)
    features, objects, queries = real_catalogue()
    real = len(features)
    print(f"{real:,} real photos, {len(queries)} queries", flush=True)
    sample = np.vstack([matching_descriptors(LocalFeatures.from_bytes(b)) for b in features])
    directory = args.workdir / "artmatch-bench-descriptors"
    index = trained_index(directory, args.photos, sample, augment=args.augment)
    del sample
    t0 = time.perf_counter()
    for pid, blob in enumerate(features):
        index.add(pid, matching_descriptors(LocalFeatures.from_bytes(blob)))
    print(f"added {real:,} real photos in {time.perf_counter() - t0:.0f} s", flush=True)
    stored = _Stored(features)
    report = {"real": run_queries(index, stored, objects, queries)}
    print(json.dumps(report["real"], indent=1), flush=True)
    if args.real_only:
        return
    fill(index, real, args.photos - real, perturb=args.perturb)
    print(f"{index.size:,} descriptors in {args.photos:,} photos", flush=True)
    t0 = time.perf_counter()
    index.save()
    saved = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in directory.glob("*.faiss"))
    del index
    before = _rss_gb()
    t0 = time.perf_counter()
    loaded = FaissDescriptorIndex.load(directory, features_key=FEATURES_KEY)
    load = time.perf_counter() - t0
    grown = _rss_gb() - before
    print(
        f"saved {size / 1e9:.2f} GB ({size / args.photos:,.0f} bytes per photo) in {saved:.0f} s;"
        f" loaded in {load:.1f} s, {grown:.2f} GB resident ({grown * 1e9 / args.photos:,.0f} "
        "bytes per photo)",
        flush=True,
    )
    report["filled"] = run_queries(loaded, stored, objects, queries)
    print(json.dumps(report["filled"], indent=1), flush=True)
    print(
        "| queries | photos | vote+verify p50 / p95 ms | objects found | wrong objects |\n"
        "|---|---|---|---|---|"
    )
    for stage, photos in (("real", real), ("filled", args.photos)):
        for name, r in report[stage].items():
            print(
                f"| {name} ({r['queries']}) | {photos:,} | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} "
                f"| {r['found']}/{r['objects']} | {r['wrong']} |"
            )
    for f in directory.glob("*"):
        f.unlink()


if __name__ == "__main__":
    main()
