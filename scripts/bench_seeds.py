"""How far the descriptor index's training seed moves decisions: `artmatch eval` on each set
once per seed (`storage.descriptors.faiss_index.KMEANS_SEED`), everything else the same.

    PYTHONPATH=. python scripts/bench_seeds.py ../shared/eval/coil100 /tmp/artmatch-trap-100 \\
        [--seeds 1234 4321 99] [--distractors ../shared/eval/distractors]

Prints one line per set and seed (recall@1, queries with a wrong or false match, queries
with an object offered only as a lead, objects of multi-object queries found), then each
figure's range over the seeds. A change of matching whose figures stay within that range on
every set cannot be told apart from a change of seed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ingest.evaluation import run_eval  # noqa: E402
from kernel.memory import keep_freed_memory  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from kernel.threads import configure_threads  # noqa: E402
from models.embedders import create_embedder  # noqa: E402
from storage.descriptors import faiss_index  # noqa: E402

FIGURES = {
    "recall@1": "recall@1",
    "wrong": "wrong_match_queries",
    "leads": "unverified_lead_queries",
    "multi": "multi_object_recall",
}


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", type=Path, nargs="+", help="evaluation sets (eval layout)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 4321, 99])
    parser.add_argument("--distractors", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings()
    configure_threads(settings.threads)  # as the CLI
    keep_freed_memory(settings.keep_freed_mb)
    with tempfile.TemporaryDirectory(prefix="bench-seeds-models-") as models:
        embedder = create_embedder(settings.embedder.model_copy(update={"model_dir": models}))
        print(f"{'set':<28} {'seed':>6} " + " ".join(f"{k:>9}" for k in FIGURES), flush=True)
        ranges: dict[str, dict[str, list[Any]]] = {}
        for set_dir in args.sets:
            for seed in args.seeds:
                faiss_index.KMEANS_SEED = seed
                with tempfile.TemporaryDirectory(prefix="bench-seeds-") as home:
                    figures = run_eval(
                        set_dir,
                        settings=settings.model_copy(update={"home": Path(home)}),
                        embedder=embedder,
                        distractors=args.distractors,
                    ).as_dict()
                row = {name: figures.get(key) for name, key in FIGURES.items()}
                for name, value in row.items():
                    ranges.setdefault(set_dir.name, {}).setdefault(name, []).append(value)
                cells = " ".join(f"{_cell(v):>9}" for v in row.values())
                print(f"{set_dir.name:<28} {seed:>6} {cells}", flush=True)
        print("\nrange over the seeds")
        for name, figures in ranges.items():
            spans = []
            for values in figures.values():
                known = [v for v in values if v is not None]
                spans.append(f"{min(known)}-{max(known)}" if known else "-")
            print(f"{name:<28} {'':>6} " + " ".join(f"{s:>9}" for s in spans))


if __name__ == "__main__":
    main()
