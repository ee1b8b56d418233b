"""Fit the match decisions (models/calibration.json) on evaluation sets; check them on others.

Every query of every set is searched (verified mode) and each returned candidate gives one
row: is it a right object, its inliers, whether its geometry verified, its similarity, the
keypoints of its catalogue photo and of the query. From the *fit* sets:

- **The inlier tail.** The inliers that wrong candidates reach (other objects, unrelated
  photos, bare backgrounds, against catalogues of any size) fall off exponentially; a line
  through ``log10 P(inliers >= n | wrong)`` over the upper tail (maximum likelihood for a
  geometric tail above ``--tail-from``) gives ``chance(n)``, and confidence = 1 - chance.
- **The match threshold:** confidence counts ``--pairs`` tries per search; the threshold is
  one minus ``--per-search``, the chance of a wrong match per search that we accept, and
  never below the confidence of ``MIN_INLIERS``.
- **Evidence keypoints:** the fewest keypoints on both sides at which at most 1% of the
  right candidates show fewer than 6 inliers (no evidence: a homography fits any 4 points):
  below it, the lack of inliers says nothing.
- **The lead similarity:** the lowest similarity at which at most ``--lead-rate`` of the
  queries with no right object (unrelated photos) would show an uncontradicted lead.

Then every set (fit and check) is decided with the fitted numbers and reported: objects
found as matches, wrong matches, leads. Fit on the synthetic lots, COIL-100 and half of the
unrelated photos; check on museum-paintings and the other half, never fitted on.

    python scripts/calibrate.py --fit ../shared/eval/seizure-lots ../shared/eval/coil100 \\
        /tmp/trap-fit --check ../shared/eval/museum-paintings /tmp/trap-check --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.search import search
from engine.search.decide import NO_EVIDENCE_BELOW
from ingest.catalogue_csv import resolve_path
from ingest.evaluation import _ground_truth, eval_catalogue
from kernel.settings import Settings
from models.calibration import Calibration
from models.embedders import create_embedder
from models.images import decode_image
from models.verification import MIN_INLIERS

OUT = Path(__file__).resolve().parent.parent / "models" / "calibration.json"


@dataclass
class Rows:
    """One row per returned candidate of every query of one set."""

    name: str
    query: np.ndarray  # query index
    right: np.ndarray  # bool
    inliers: np.ndarray
    verified: np.ndarray  # geometry verified (before any threshold)
    similarity: np.ndarray
    photo_keypoints: np.ndarray
    query_keypoints: np.ndarray
    queries: int
    expected: list[set[str]]
    objects: list[str]

    @classmethod
    def load(cls, path: Path) -> Rows:
        d = np.load(path, allow_pickle=True)
        return cls(
            name=str(d["name"]),
            query=d["query"],
            right=d["right"],
            inliers=d["inliers"],
            verified=d["verified"],
            similarity=d["similarity"],
            photo_keypoints=d["photo_keypoints"],
            query_keypoints=d["query_keypoints"],
            queries=int(d["queries"]),
            expected=[set(e) for e in d["expected"]],
            objects=list(d["objects"]),
        )

    def save(self, path: Path) -> None:
        np.savez(
            path,
            name=self.name,
            query=self.query,
            right=self.right,
            inliers=self.inliers,
            verified=self.verified,
            similarity=self.similarity,
            photo_keypoints=self.photo_keypoints,
            query_keypoints=self.query_keypoints,
            queries=self.queries,
            expected=np.array([sorted(e) for e in self.expected], dtype=object),
            objects=np.array(self.objects),
        )


def collect(set_dir: Path, settings: Settings, embedder, cache_dir: Path) -> Rows:  # type: ignore[no-untyped-def]
    cache = cache_dir / f"{set_dir.name}.npz"
    if cache.exists():
        return Rows.load(cache)
    queries = _ground_truth(set_dir)
    cols: dict[str, list[object]] = {
        k: []
        for k in (
            "query",
            "right",
            "inliers",
            "verified",
            "similarity",
            "photo_keypoints",
            "query_keypoints",
            "objects",
        )
    }
    expected = []
    with eval_catalogue(set_dir, settings=settings, embedder=embedder) as (services, _, _):
        for qi, query in enumerate(queries):
            truth = set(query.get("objects") or [])
            expected.append(truth)
            path = resolve_path(set_dir, str(query["image"]))
            image = decode_image(path.read_bytes(), source=str(path))
            result = search(services, image, top_k=20, verify=True)
            for hit in result.hits:
                cols["query"].append(qi)
                cols["right"].append(hit.object_id in truth)
                cols["inliers"].append(hit.inliers or 0)
                cols["verified"].append(hit.region is not None)
                cols["similarity"].append(hit.similarity)
                cols["photo_keypoints"].append(hit.photo_keypoints or 0)
                cols["query_keypoints"].append(result.query_keypoints or 0)
                cols["objects"].append(hit.object_id)
            print(f"\r{set_dir.name}: {qi + 1}/{len(queries)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    rows = Rows(
        name=set_dir.name,
        query=np.asarray(cols["query"], int),
        right=np.asarray(cols["right"], bool),
        inliers=np.asarray(cols["inliers"], int),
        verified=np.asarray(cols["verified"], bool),
        similarity=np.asarray(cols["similarity"], float),
        photo_keypoints=np.asarray(cols["photo_keypoints"], int),
        query_keypoints=np.asarray(cols["query_keypoints"], int),
        queries=len(queries),
        expected=expected,
        objects=[str(o) for o in cols["objects"]],
    )
    rows.save(cache)
    return rows


def fit_tail(wrong_inliers: np.ndarray, tail_from: int) -> tuple[float, float]:
    """(intercept, slope) of log10 P(I >= n) for the wrong candidates' inliers: the share at
    ``tail_from`` and a geometric tail above it (maximum likelihood)."""
    n = np.asarray(wrong_inliers, float)
    at = np.mean(n >= tail_from)
    above = n[n >= tail_from] - tail_from
    if at == 0 or len(above) < 5:
        raise SystemExit(f"too few wrong candidates with >= {tail_from} inliers to fit a tail")
    # Geometric on {0, 1, ...}: P(X >= k) = q**k, MLE q = mean / (1 + mean).
    q = above.mean() / (1.0 + above.mean())
    slope = float(np.log10(q))
    intercept = float(np.log10(at) - slope * tail_from)
    return intercept, slope


def decide(rows: Rows, cal: Calibration) -> dict[str, object]:
    conf = cal.confidence(rows.inliers)
    match = rows.verified & (conf >= cal.threshold)
    contradicted = (
        (rows.inliers < NO_EVIDENCE_BELOW)
        & (rows.photo_keypoints >= cal.evidence_keypoints)
        & (rows.query_keypoints >= cal.evidence_keypoints)
    )
    lead = ~match & (rows.similarity >= cal.lead_similarity) & ~contradicted
    wrong_match_queries = {int(q) for q in rows.query[match & ~rows.right]}
    expected_total = sum(len(e) for e in rows.expected)
    found = {
        (int(q), o)
        for q, o, m, r in zip(rows.query, rows.objects, match, rows.right, strict=True)
        if m and r
    }
    leads_right = {
        (int(q), o)
        for q, o, m, r in zip(rows.query, rows.objects, lead, rows.right, strict=True)
        if m and r
    }
    empty = [i for i, e in enumerate(rows.expected) if not e]
    return {
        "queries": rows.queries,
        "objects_expected": expected_total,
        "objects_found_as_matches": round(len(found) / expected_total, 4)
        if expected_total
        else None,
        "objects_only_leads": round(len(leads_right - found) / expected_total, 4)
        if expected_total
        else None,
        "queries_with_a_wrong_match": len(wrong_match_queries),
        "unrelated_queries": len(empty),
        "unrelated_queries_with_a_lead": len(
            {int(q) for q in rows.query[lead] if int(q) in set(empty)}
        ),
        "max_wrong_inliers": int(rows.inliers[~rows.right].max(initial=0)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--fit", nargs="+", type=Path, required=True, help="sets to fit on")
    ap.add_argument("--check", nargs="*", type=Path, default=[], help="held-out sets to check on")
    ap.add_argument(
        "--cache", type=Path, default=Path("/tmp/artmatch-calibration"), help="row cache"
    )
    ap.add_argument("--tail-from", type=int, default=4, help="inliers where the tail fit starts")
    ap.add_argument("--pairs", type=int, default=30, help="candidates verified per search")
    ap.add_argument("--per-search", type=float, default=1e-3, help="wrong-match chance per search")
    ap.add_argument("--lead-rate", type=float, default=0.02, help="unrelated queries with a lead")
    ap.add_argument("--write", action="store_true", help=f"write {OUT}")
    args = ap.parse_args()

    settings = Settings()
    embedder = create_embedder(settings.embedder)
    args.cache.mkdir(parents=True, exist_ok=True)
    fit = [collect(s, settings, embedder, args.cache) for s in args.fit]
    check = [collect(s, settings, embedder, args.cache) for s in args.check]

    wrong = np.concatenate([r.inliers[~r.right] for r in fit])
    intercept, slope = fit_tail(wrong, args.tail_from)
    provisional = Calibration(intercept, slope, 0.5, 1.0, 0, pairs_per_search=args.pairs)
    threshold = float(max(1.0 - args.per_search, provisional.confidence(MIN_INLIERS)[0]))

    right = np.concatenate([r.right for r in fit])
    inl = np.concatenate([r.inliers for r in fit])
    pk = np.concatenate([r.photo_keypoints for r in fit])
    qk = np.concatenate([r.query_keypoints for r in fit])
    evidence = 0
    for k in range(10, 2001, 10):
        both = right & (pk >= k) & (qk >= k)
        if both.sum() >= 20 and np.mean(inl[both] < NO_EVIDENCE_BELOW) <= 0.01:
            evidence = k
            break
    if evidence == 0:
        raise SystemExit("no keypoint count makes zero inliers reliable evidence on these sets")

    # Lead similarity: over the unrelated queries of the fit sets, the best uncontradicted
    # similarity per query; the threshold leaves at most lead_rate of them above it.
    best = []
    for r in fit:
        free = ~(
            (r.inliers < NO_EVIDENCE_BELOW)
            & (r.photo_keypoints >= evidence)
            & (r.query_keypoints >= evidence)
        )
        for qi, e in enumerate(r.expected):
            if not e:
                sims = r.similarity[(r.query == qi) & free]
                best.append(sims.max(initial=-1.0))
    if not best:
        raise SystemExit("the fit sets hold no unrelated queries to set the lead threshold on")
    lead = float(np.quantile(best, 1.0 - args.lead_rate))

    cal = Calibration(
        tail_intercept=intercept,
        tail_slope=slope,
        threshold=round(threshold, 6),
        lead_similarity=round(lead + 1e-4, 4),
        evidence_keypoints=evidence,
        pairs_per_search=args.pairs,
        provenance={},
    )
    report = {r.name: decide(r, cal) for r in fit}
    held = {r.name: decide(r, cal) for r in check}
    provenance = {
        "fitted": dt.date.today().isoformat(),
        "fitted_on": [r.name for r in fit],
        "checked_on": [r.name for r in check],
        "wrong_candidates": int(len(wrong)),
        "tail_from": args.tail_from,
        "pairs_per_search": args.pairs,
        "wrong_match_chance_per_search": args.per_search,
        "match_needs_inliers": round(float(cal.inliers_for(cal.threshold)), 1),
        "lead_rate_on_unrelated": args.lead_rate,
        "in_sample": report,
        "held_out": held,
        "model": f"{embedder.name} {embedder.version}",
    }
    cal = Calibration(**{**cal.__dict__, "provenance": provenance})
    print(json.dumps(json.loads(cal.to_json()), indent=1))
    if args.write:
        OUT.write_text(cal.to_json() + "\n")
        print(f"written to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
