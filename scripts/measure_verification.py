"""Measure how well geometric verification separates true from false catalogue pairs.

For every query of an evaluation set (layout in /work/shared/eval/README.md) this verifies the
query against each catalogue photo of its true objects and against a few random wrong ones,
then prints the inlier distributions, the best inlier threshold, the true-positive rate at 1% false
positives, and the time per extraction and per verification.

    python scripts/measure_verification.py /work/shared/eval/museum-paintings \
        --method rootsift --max-side 640 --max-keypoints 1000
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from models.local_features import METHODS, LocalFeatures, extract_local_features
from models.verification import MIN_INLIERS, verify


def _load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _pct(values: list[float], qs: tuple[int, ...] = (5, 25, 50, 75, 95, 99)) -> str:
    if not values:
        return "(none)"
    arr = np.asarray(values, dtype=np.float64)
    return " ".join(f"p{q}={np.percentile(arr, q):.1f}" for q in qs) + f" max={arr.max():.0f}"


def _separation(true: list[int], false: list[int]) -> str:
    t = np.asarray(true)
    f = np.asarray(false)
    lines = []
    best = max(
        range(0, 101),
        key=lambda th: ((t >= th).mean() if len(t) else 0) - ((f >= th).mean() if len(f) else 0),
    )
    lines.append(
        f"  best inlier threshold (max TPR-FPR): {best}: TPR={(t >= best).mean():.3f} "
        f"FPR={(f >= best).mean():.4f}"
    )
    for target in (0.01, 0.001):
        th = next(x for x in range(0, 10_000) if (f >= x).mean() <= target)
        lines.append(f"  FPR<={target:g}: inlier threshold {th}, TPR={(t >= th).mean():.3f}")
    lines.append(
        f"  at MIN_INLIERS={MIN_INLIERS}: TPR={(t >= MIN_INLIERS).mean():.3f} "
        f"FPR={(f >= MIN_INLIERS).mean():.4f}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    root: Path = args.set
    with open(root / "catalogue.csv", newline="") as fh:
        catalogue = [(row["image"], row["object_id"]) for row in csv.DictReader(fh)]
    photos_of: dict[str, list[str]] = defaultdict(list)
    for image, object_id in catalogue:
        photos_of[object_id].append(image)
    queries = json.loads((root / "ground_truth.json").read_text())["queries"]
    if args.limit:
        queries = queries[: args.limit]
    rng = random.Random(args.seed)
    options = {
        "method": args.method,
        "max_side": args.max_side,
        "max_keypoints": args.max_keypoints,
    }

    cache: dict[str, LocalFeatures] = {}
    times_q: list[float] = []
    times_c: list[float] = []
    times_v: list[float] = []
    blob_sizes: list[int] = []

    def catalogue_features(image: str) -> LocalFeatures:
        if image not in cache:
            rgb = _load_rgb(root / image)
            start = time.perf_counter()
            cache[image] = extract_local_features(rgb, **options)
            times_c.append(time.perf_counter() - start)
            blob_sizes.append(len(cache[image].to_bytes()))
        return cache[image]

    true_inliers: list[int] = []
    false_inliers: list[int] = []
    mirrored_true = 0
    pairs: list[tuple[int, bool, str, str]] = []
    keypoint_counts: list[int] = []
    for query in queries:
        rgb = _load_rgb(root / query["image"])
        start = time.perf_counter()
        qf = extract_local_features(rgb, **options)
        times_q.append(time.perf_counter() - start)
        keypoint_counts.append(len(qf))
        truth = set(query["objects"])
        true_images = [image for obj in truth for image in photos_of.get(obj, [])]
        wrong_pool = [image for image, obj in catalogue if obj not in truth]
        wrong_images = rng.sample(wrong_pool, min(args.negatives, len(wrong_pool)))
        for image, is_true in [(i, True) for i in true_images] + [(i, False) for i in wrong_images]:
            cf = catalogue_features(image)
            start = time.perf_counter()
            result = verify(qf, cf, ratio=args.ratio)
            times_v.append(time.perf_counter() - start)
            (true_inliers if is_true else false_inliers).append(result.inliers)
            pairs.append((result.inliers, is_true, query["image"], image))
            mirrored_true += int(is_true and result.mirrored and result.is_match)

    ms = 1000.0
    print(
        f"set={root.name} method={args.method} max_side={args.max_side} "
        f"max_keypoints={args.max_keypoints} ratio={args.ratio} threads={cv2.getNumThreads()}"
    )
    print(f"  queries={len(queries)} true pairs={len(true_inliers)} false={len(false_inliers)}")
    print(f"  query keypoints: {_pct(keypoint_counts, (5, 50, 95))}")
    print(f"  true inliers:  {_pct(true_inliers)}")
    print(f"  false inliers: {_pct(false_inliers)}")
    print(_separation(true_inliers, false_inliers))
    print(f"  true matches found only through the mirror attempt: {mirrored_true}")
    print(f"  extract query ms:     {_pct([t * ms for t in times_q], (50, 95))}")
    print(f"  extract catalogue ms: {_pct([t * ms for t in times_c], (50, 95))}")
    print(f"  verify ms:            {_pct([t * ms for t in times_v], (50, 95))}")
    print(f"  blob KiB:             {_pct([b / 1024 for b in blob_sizes], (50, 95))}")
    if args.show_worst:
        worst_false = sorted((p for p in pairs if not p[1]), reverse=True)[: args.show_worst]
        worst_true = sorted(p for p in pairs if p[1])[: args.show_worst]
        for label, rows in (("strongest false", worst_false), ("weakest true", worst_true)):
            for inliers, _, query_image, image in rows:
                print(f"  {label}: {inliers:4d} {query_image} vs {image}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="evaluation set folder (has catalogue.csv)")
    parser.add_argument("--method", choices=METHODS, default="rootsift")
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--max-keypoints", type=int, default=1000)
    parser.add_argument("--ratio", type=float, default=0.8)
    parser.add_argument("--negatives", type=int, default=10, help="wrong photos per query")
    parser.add_argument("--limit", type=int, default=0, help="first N queries only (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-worst", type=int, default=0, help="list the N hardest pairs")
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads (the 2-core box)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)
    run(args)


if __name__ == "__main__":
    sys.exit(main())
