"""Measure the near-duplicate check of ingest: how similar are photos of one object, and of two?

For a set in the evaluation layout this embeds every catalogue photo and every query photo,
then prints (1) the similarity of each catalogue photo to its nearest photo of ANOTHER object
(what the ingest check sees for an honest new object), (2) the similarity of each query photo
to its own object's best photo (a different photograph of the same object, as a double entry
would be), and (3) the most similar pairs of catalogue photos of two objects with their
inliers: a double entry (one object under two ids) shows up there.

    python scripts/measure_near_duplicates.py /work/shared/eval/museum-paintings
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ingest.catalogue_csv import iter_items, read_catalogue_csv, resolve_path
from kernel.settings import EmbedderSettings
from models.embedders import create_embedder
from models.images import decode_image
from models.local_features import extract_local_features
from models.verification import MIN_INLIERS, verify


def _embed(embedder, loads: list[Callable[[], bytes]]) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = []
    for start in range(0, len(loads), 16):
        images = [decode_image(load()).image for load in loads[start:][:16]]
        out.append(embedder.embed(images))
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", type=Path)
    ap.add_argument("--pairs", type=int, default=15, help="most similar pairs to verify")
    a = ap.parse_args()
    items = list(iter_items(read_catalogue_csv(a.set / "catalogue.csv")))
    names = [i.source for i in items]
    owners = np.array([i.record.object_id for i in items])
    embedder = create_embedder(EmbedderSettings())
    cat = _embed(embedder, [i.load for i in items])
    sims = cat @ cat.T
    other = np.where(owners[:, None] != owners[None, :], sims, -1.0)
    nearest_other = other.max(axis=1)
    pct = (50, 90, 99, 100)
    print(
        "nearest other object, per catalogue photo: percentiles",
        pct,
        "=",
        np.round(np.percentile(nearest_other, pct), 3).tolist(),
    )
    gt = json.loads((a.set / "ground_truth.json").read_text())["queries"]
    by_object = defaultdict(list)
    for n, oid in enumerate(owners):
        by_object[oid].append(n)
    known = [q for q in gt if q["objects"]]
    queries = _embed(embedder, [resolve_path(a.set, q["image"]).read_bytes for q in known])
    own = [
        max(float(queries[k] @ cat[j]) for o in q["objects"] for j in by_object[o])
        for k, q in enumerate(known)
    ]
    print(
        "query photo to its own object: percentiles (0, 1, 5, 10, 50) =",
        np.round(np.percentile(own, (0, 1, 5, 10, 50)), 3).tolist(),
    )
    print("floor  catalogue photos with another object above it  query photos of their object")
    for floor in (0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85):
        above = (other >= floor).sum(axis=1)
        print(
            f"{floor:.2f}   {np.mean(above > 0):.2f} (mean {np.minimum(above, 3).mean():.2f} of the"
            f" top 3)   {np.mean(np.asarray(own) >= floor):.2f}"
        )
    iu = np.triu_indices(len(items), 1)
    order = np.argsort(-other[iu])[: a.pairs]
    feats: dict[int, object] = {}
    for r in order:
        i, j = int(iu[0][r]), int(iu[1][r])
        for n in (i, j):
            if n not in feats:
                feats[n] = extract_local_features(decode_image(items[n].load()).to_array())
        v = verify(feats[i], feats[j])  # type: ignore[arg-type]
        flag = "  <- verifies" if v.inliers >= MIN_INLIERS else ""
        print(f"{other[i, j]:.3f}  {names[i]}  {names[j]}  inliers {v.inliers}{flag}")


if __name__ == "__main__":
    main()
