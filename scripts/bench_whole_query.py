"""The whole query, end to end, against a descriptor index of a million photos.

    PYTHONPATH=. python scripts/bench_whole_query.py --photos 1000000

Builds the catalogue `artmatch eval` builds for museum-paintings with the 3,982 photos of
../shared/eval (catalogue plus distractors: about 5 minutes of ingest), then times
`engine.search.search`, the service's whole query (decode, CNN, SIFT, vector search, vote and
verify, pairwise checks, decisions), over the museum and seizure-lot query photos:

1. with the catalogue's own descriptor index (IVF-SQ4 at this size), as the service runs;
2. with a compact index planned for ``--photos`` (`storage.descriptors.faiss_index`) holding
   the same real photos plus synthetic ones (`bench_descriptors.fill`), swapped into the
   services.

The vector index and the SQL catalogue stay at the real size: at a million photos the vector
search costs ~1-2 ms per query view more (README, "The vector index at scale"). Synthetic
photos have no stored features or rows, so they never verify; the decisions of stage 2 are
therefore not a recall at a million photos (README, "The descriptor index at a million
photos"). Prints p50/p95 per query set, one-object museum photos apart, and the decisions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_descriptors import EVAL, fill, summarise, trained_index  # noqa: E402

from engine.search import search  # noqa: E402
from engine.services import Services  # noqa: E402
from ingest.evaluation import eval_catalogue, wrong_matches  # noqa: E402
from kernel.memory import keep_freed_memory  # noqa: E402
from kernel.settings import get_settings  # noqa: E402
from kernel.threads import configure_threads  # noqa: E402
from models.embedders import create_embedder  # noqa: E402
from models.images import DecodedImage, decode_image  # noqa: E402
from models.local_features import FEATURES_KEY, LocalFeatures, matching_descriptors  # noqa: E402
from storage.descriptors import faiss_index  # noqa: E402

Query = tuple[str, DecodedImage, set[str]]


def load_queries() -> list[Query]:
    """(group, decoded photo, objects it shows); museum photos of one object form a group of
    their own, the photos the issue's one-object target is about."""
    out: list[Query] = []
    for name in ("museum-paintings", "seizure-lots"):
        for q in json.loads((EVAL / name / "ground_truth.json").read_text())["queries"]:
            objects = set(q["objects"])
            group = (
                "museum, one object" if name == "museum-paintings" and len(objects) == 1 else name
            )
            out.append((group, decode_image((EVAL / name / q["image"]).read_bytes()), objects))
    return out


def run(services: Services, queries: list[Query]) -> dict[str, dict[str, float]]:
    """Per group: whole-query p50/p95 ms, objects matched / shown, queries with a wrong match."""
    per: dict[str, dict[str, list[float]]] = {}
    for group, image, objects in queries:
        t0 = time.perf_counter()
        result = search(services, image, top_k=10)
        ms = (time.perf_counter() - t0) * 1000
        matched = {h.object_id for h in result.matches}
        r = per.setdefault(group, {"ms": [], "found": [], "objects": [], "wrong": []})
        r["ms"].append(ms)
        r["found"].append(len(matched & objects))
        r["objects"].append(len(objects))
        # Lots also show unrelated items made from distractor photos, which are catalogue
        # objects here: matching one is right, so only a painting the photo lacks is wrong.
        wrong = [
            o
            for o in wrong_matches(result, objects)
            if group != "seizure-lots" or not o.startswith("distractor:")
        ]
        r["wrong"].append(bool(wrong))
    return summarise(per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--perturb", type=int, default=16, help="code bytes replaced (of 16)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--query-descriptors", type=int, default=faiss_index.COMPACT_QUERY_DESCRIPTORS
    )
    args = parser.parse_args()
    faiss_index.COMPACT_QUERY_DESCRIPTORS = args.query_descriptors
    settings = get_settings()
    configure_threads(settings.threads)  # as the service: one BLAS thread
    keep_freed_memory(settings.keep_freed_mb)
    embedder = create_embedder(
        settings.embedder.model_copy(update={"model_dir": settings.model_path})
    )
    queries = load_queries()
    table: list[tuple[str, dict[str, dict[str, float]]]] = []
    with eval_catalogue(
        EVAL / "museum-paintings",
        settings=settings,
        embedder=embedder,
        distractors=EVAL / "distractors",
    ) as (services, outcomes, elapsed):
        print(f"ingested {len(outcomes):,} photos in {elapsed:.0f} s", flush=True)
        real_layout = getattr(services.descriptors, "layout", "?")
        table.append(
            (f"{services.descriptors.size:,} descriptors ({real_layout})", run(services, queries))
        )
        print(json.dumps(table[-1][1], indent=1), flush=True)
        ids = services.catalogue.local_feature_ids(FEATURES_KEY)
        blobs = services.catalogue.local_features(ids, FEATURES_KEY)
        descriptors = {
            pid: matching_descriptors(LocalFeatures.from_bytes(blob)) for pid, blob in blobs.items()
        }
        faiss.omp_set_num_threads(2)
        index = trained_index(
            args.workdir / "artmatch-bench-whole-query",
            args.photos,
            np.vstack(list(descriptors.values())),
            augment=True,
        )
        for pid, desc in descriptors.items():
            index.add(pid, desc)
        fill(index, max(ids) + 1, args.photos - len(ids), perturb=args.perturb)
        del descriptors
        services.descriptors = index
        print(f"compact index: {index.size:,} descriptors, {index.lists:,} lists", flush=True)
        table.append((f"{args.photos:,} photos (compact)", run(services, queries)))
        print(json.dumps(table[-1][1], indent=1), flush=True)
    print("| descriptor index | queries | whole query p50 / p95 ms | objects matched | wrong |")
    print("|---|---|---|---|---|")
    for label, groups in table:
        for group, r in groups.items():
            print(
                f"| {label} | {group} ({r['queries']}) | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} "
                f"| {r['found']}/{r['objects']} | {r['wrong']} |"
            )


if __name__ == "__main__":
    main()
