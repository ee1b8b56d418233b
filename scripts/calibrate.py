"""Fit the match calibration (models/calibration.json) on evaluation sets.

For every query of each set, the candidates of a verified search give one row each:
(global cosine, inliers, is it a right object). A gradient-boosted model constrained to be
monotone in both maps them to a probability (tabulated on a grid); the operating threshold is
the lowest probability at which, on these queries, at most ``--target-fmr`` of them would
report a wrong object as a match. Fit on sets other than the one the headline figures are
reported on (here the synthetic seizure lots and COIL-100; museum-paintings stays held out).

    python scripts/calibrate.py ../shared/eval/seizure-lots ../shared/eval/coil100
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from engine.search import search
from ingest.evaluation import _ground_truth, eval_catalogue
from kernel.settings import Settings
from models.calibration import Calibration, features, object_margins
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
                rows.append((hit.similarity, hit.inliers or 0))
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
    return min(0.99, float(np.nextafter(threshold, 1.0)))


def with_margins(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rows (cosine, inliers) -> (cosine, inliers, margin), margins within each query."""
    margins = np.zeros(len(x))
    for qi in np.unique(q):
        rows = np.flatnonzero(q == qi)
        margins[rows] = object_margins(x[rows, 0])
    return np.column_stack([x[:, :2], margins])


AXES = (
    np.round(np.arange(-0.2, 1.0001, 0.025), 4),  # cosine
    np.round(np.arange(0.0, 7.0001, 0.5), 4),  # log1p(inliers): up to ~1100
    np.round(np.arange(-0.3, 0.4001, 0.025), 4),  # margin
)


def fit_table(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A monotone gradient-boosted model of P(right object | evidence), tabulated on AXES."""
    model = HistGradientBoostingClassifier(
        monotonic_cst=[1, 1, 1],
        max_depth=3,
        min_samples_leaf=40,
        learning_rate=0.05,
        max_iter=200,
        random_state=0,
    )
    model.fit(features(x[:, 0], x[:, 1], x[:, 2]), y)
    grid = np.stack(np.meshgrid(*AXES, indexing="ij"), axis=-1).reshape(-1, 3)
    table = model.predict_proba(grid)[:, 1].reshape(tuple(len(a) for a in AXES))
    # The constraints hold in the model; accumulating removes float noise.
    for axis in range(3):
        table = np.maximum.accumulate(table, axis=axis)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--target-fmr", type=float, default=0.02)
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
    x = with_margins(x, q)
    table = fit_table(x, y)
    provisional = Calibration(
        axes=tuple(tuple(float(v) for v in a) for a in AXES),  # type: ignore[arg-type]
        table=table.tolist(),
        threshold=0.5,
    )
    probs = provisional.probability(x[:, 0], x[:, 1], x[:, 2])
    threshold = round(choose_threshold(probs, y, q, args.target_fmr), 4)
    # The same rule on the cosine alone: the threshold of searches without verification.
    cosine_threshold = round(choose_threshold(x[:, 0], y, q, args.target_fmr), 3)
    per_set = {}
    for name, qq, yy, xx in zip(names, qs, ys, xs, strict=True):
        xx = with_margins(xx, qq)
        pp = provisional.probability(xx[:, 0], xx[:, 1], xx[:, 2])
        wrong = [(pp[(qq == i) & ~yy] >= threshold).any() for i in np.unique(qq)]
        per_set[name] = {
            "queries_with_a_wrong_match": round(float(np.mean(wrong)), 4),
            "right_candidates_above_threshold": round(float(np.mean(pp[yy] >= threshold)), 4),
        }
    calibration = Calibration(
        axes=provisional.axes,
        table=provisional.table,
        threshold=threshold,
        provenance={
            "fitted_on": names,
            "fitted": dt.date.today().isoformat(),
            "rows": int(len(y)),
            "positives": int(y.sum()),
            "method": "HistGradientBoostingClassifier(monotonic_cst=[1, 1, 1], max_depth=3, "
            "min_samples_leaf=40), tabulated",
            "target_query_false_match_rate": args.target_fmr,
            "cosine_only_threshold": cosine_threshold,
            "in_sample": per_set,
            "features": "[cosine, log1p(inliers), margin to the nearest other object]",
            "model": f"{embedder.name} {embedder.version}",
        },
    )
    args.out.write_text(calibration.to_json() + "\n")
    print(json.dumps({"threshold": threshold, "provenance": calibration.provenance}, indent=2))


if __name__ == "__main__":
    main()
