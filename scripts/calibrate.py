"""Fit the match calibration (models/calibration.json) on evaluation sets.

For every query of each set, the candidates of a verified search give one row each:
(global cosine, inliers, is it a right object). A logistic regression with non-negative
weights maps them to a probability; the operating threshold is the lowest probability at
which, on these queries, at most ``--target-fmr`` of them would report a wrong object as a
match. Fit on sets that are *not* the ones the figures are reported on (by default the
synthetic seizure lots and COIL-100; museum-paintings stays held out).

    python scripts/calibrate.py ../shared/eval/seizure-lots ../shared/eval/coil100
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from artmatch.config import Settings
from artmatch.matching import search
from ingest.evaluation import _ground_truth, eval_catalogue
from models.calibration import Calibration, features
from models.embedders import create_embedder
from models.images import decode_image

OUT = Path(__file__).resolve().parent.parent / "models" / "calibration.json"


def collect(  # type: ignore[no-untyped-def]
    set_dir: Path, settings: Settings, embedder, cache: Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (cosine, inliers), labels and query index of every candidate of every query;
    cached in ``cache`` (an .npz) when given, since collecting takes minutes."""
    if cache is not None and cache.exists():
        data = np.load(cache)
        return data["rows"], data["labels"], data["query_index"]
    rows, labels, query_index = [], [], []
    queries = _ground_truth(set_dir)
    with eval_catalogue(set_dir, settings=settings, embedder=embedder) as (services, _, _):
        for qi, query in enumerate(queries):
            expected = set(query.get("objects") or [])
            image = decode_image((set_dir / str(query["image"])).read_bytes())
            result = search(services, image, top_k=settings.match.verify_top, verify=True)
            for hit in result.hits:
                rows.append((hit.score, hit.inliers or 0))
                labels.append(hit.object_id in expected)
                query_index.append(qi)
            print(f"\r{set_dir.name}: {qi + 1}/{len(queries)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    out = np.asarray(rows, float), np.asarray(labels, bool), np.asarray(query_index)
    if cache is not None:
        np.savez(cache, rows=out[0], labels=out[1], query_index=out[2])
    return out


def choose_threshold(
    probs: np.ndarray, labels: np.ndarray, qidx: np.ndarray, target: float
) -> float:
    """Lowest threshold at which at most ``target`` of the queries show a wrong match."""
    worst_wrong = np.array([probs[(qidx == q) & ~labels].max(initial=0.0) for q in np.unique(qidx)])
    threshold = float(np.quantile(worst_wrong, 1.0 - target, method="higher"))
    return min(0.99, np.nextafter(threshold, 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--target-fmr", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--cache", type=Path, help="directory to cache collected rows in")
    args = parser.parse_args()
    settings = Settings()
    embedder = create_embedder(settings.embedder)
    xs, ys, qs, names = [], [], [], []
    offset = 0
    for set_dir in args.sets:
        cache = args.cache / f"{set_dir.name}.npz" if args.cache else None
        x, y, q = collect(set_dir, settings, embedder, cache)
        xs.append(x)
        ys.append(y)
        qs.append(q + offset)
        offset += int(q.max()) + 1
        names.append(set_dir.name)
    x, y, q = np.concatenate(xs), np.concatenate(ys), np.concatenate(qs)
    model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=1000)
    model.fit(features(x[:, 0], x[:, 1]), y)
    weights = np.maximum(model.coef_[0], 0.0)
    bias = float(model.intercept_[0])
    provisional = Calibration(
        weights=(float(weights[0]), float(weights[1])), bias=bias, threshold=0.5
    )
    probs = provisional.probability(x[:, 0], x[:, 1])
    threshold = choose_threshold(probs, y, q, args.target_fmr)
    positives = probs[y]
    first_right = [
        probs[(q == i) & y].max(initial=0.0) >= threshold for i in np.unique(q) if y[q == i].any()
    ]
    calibration = Calibration(
        weights=provisional.weights,
        bias=bias,
        threshold=round(threshold, 4),
        provenance={
            "fitted_on": names,
            "fitted": dt.date.today().isoformat(),
            "rows": int(len(y)),
            "positives": int(y.sum()),
            "target_query_false_match_rate": args.target_fmr,
            "queries_with_right_object_above_threshold": round(float(np.mean(first_right)), 4),
            "positive_rows_above_threshold": round(float(np.mean(positives >= threshold)), 4),
            "features": "[cosine, log1p(inliers)]",
            "model": f"{embedder.name} {embedder.version}",
        },
    )
    args.out.write_text(calibration.to_json() + "\n")
    print(calibration.to_json())


if __name__ == "__main__":
    main()
