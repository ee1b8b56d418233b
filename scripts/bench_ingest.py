"""Ingest speed end to end and query latency, torch vs ONNX Runtime, pool sizes 1 and 2.

    python scripts/bench_ingest.py [--set ../shared/eval/museum-paintings] [--repeats 1]
                                   [--stage-photos 60] [--no-queries]

Prints three tables: per-stage milliseconds per photo (medians, one process, one thread);
end-to-end ingest (photos/s, CPU % of one core, user+system time of this process and its
workers over wall time) for each runtime and pool size; query p50/p95 (``artmatch eval``'s
figures) per runtime. The machine's load average before and after is printed: on a shared
machine, compare the ratios of one run rather than absolute figures across runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from engine.services import build_services  # noqa: E402
from ingest.catalogue_csv import iter_items, read_catalogue_csv  # noqa: E402
from ingest.evaluation import run_eval  # noqa: E402
from ingest.photos import Outcome, ingest_photos  # noqa: E402
from kernel.memory import keep_freed_memory  # noqa: E402
from kernel.settings import EmbedderSettings, IngestSettings, Settings  # noqa: E402
from kernel.threads import configure_threads  # noqa: E402
from models.embedders import Embedder, create_embedder  # noqa: E402
from models.images import decode_image, make_thumbnail  # noqa: E402
from models.local_features import extract_local_features  # noqa: E402

RUNTIMES = ("torch", "onnx")


def _ms(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return (time.perf_counter() - start) * 1000, value


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _descendants_cpu() -> dict[int, float]:
    """CPU seconds of every process below this one, by pid. The pool's workers are children
    of the forkserver, not of this process, so `RUSAGE_CHILDREN` never counts them."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    mine = {os.getpid()}
    grew = True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in mine} - mine
        grew = bool(below)
        mine |= below
    mine.discard(os.getpid())
    return {pid: cpu[pid] for pid in mine}


class _TreeCpu:
    """CPU seconds of this process and its descendants over a block, sampled every 0.2 s (a
    worker's last 0.2 s before it exits may be missed)."""

    def __enter__(self) -> _TreeCpu:
        self._start_own = _own_cpu_s()
        self._start = _descendants_cpu()
        self._latest = dict(self._start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._latest.update(_descendants_cpu())

    def __exit__(self, *exc: object) -> None:
        self._latest.update(_descendants_cpu())
        self._stop.set()
        self._thread.join()
        kids = sum(v - self._start.get(pid, 0.0) for pid, v in self._latest.items())
        self.seconds = _own_cpu_s() - self._start_own + kids


def stage_table(set_dir: Path, embedders: dict[str, Embedder], count: int) -> None:
    import cv2

    paths = [set_dir / row for row in _catalogue_paths(set_dir)][:count]
    stages: dict[str, list[float]] = {}
    # One thread, as in a pool's worker: the costs add up to a photo's CPU.
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    for path in paths:
        data = path.read_bytes()
        ms, image = _ms(lambda data=data: decode_image(data))
        stages.setdefault("decode", []).append(ms)
        ms, _ = _ms(lambda image=image: make_thumbnail(image.image))
        stages.setdefault("thumbnail", []).append(ms)
        ms, features = _ms(lambda image=image: extract_local_features(image.to_array()))
        stages.setdefault("local features (SIFT)", []).append(ms)
        ms, _ = _ms(features.to_bytes)  # type: ignore[attr-defined]
        stages.setdefault("feature compression", []).append(ms)
        for runtime, emb in embedders.items():
            ms, _ = _ms(lambda emb=emb, image=image: emb.embed([image.image]))
            stages.setdefault(f"CNN ({runtime})", []).append(ms)
    # Same-shape inputs share a forward pass in the ONNX embedder: 8 photos of one shape.
    same = [decode_image(paths[0].read_bytes()).image] * 8
    for runtime, emb in embedders.items():
        one = [_ms(lambda emb=emb: emb.embed(same[:1]))[0] for _ in range(5)]
        eight = [_ms(lambda emb=emb: emb.embed(same))[0] / 8 for _ in range(5)]
        stages[f"CNN ({runtime}), 1 a pass"] = one
        stages[f"CNN ({runtime}), 8 a pass"] = eight
    cv2.setNumThreads(opencv_threads)
    print(f"\nper-stage ms per photo (median of {len(paths)} photos, one process, one thread)")
    for stage, values in stages.items():
        print(f"  {stage:<24} {statistics.median(values):8.1f}")


def _catalogue_paths(set_dir: Path) -> list[str]:
    import csv

    with (set_dir / "catalogue.csv").open(newline="") as fh:
        return [row["image"] for row in csv.DictReader(fh)]


def ingest_once(
    set_dir: Path, *, embedder: Embedder, runtime: str, workers: int, model_dir: Path
) -> tuple[float, float, int]:
    """(photos/s, CPU % of one core, photos added) of one ingest into a fresh catalogue."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        settings = Settings(
            home=Path(tmp),
            embedder=EmbedderSettings(runtime=runtime, model_dir=model_dir),  # type: ignore[arg-type]
            ingest=IngestSettings(workers=workers),
        )
        services = build_services(settings, embedder=embedder)
        try:
            items = list(iter_items(read_catalogue_csv(set_dir / "catalogue.csv")))
            with _TreeCpu() as tree:
                start = time.perf_counter()
                outcomes = ingest_photos(services, items)
                wall = time.perf_counter() - start
            cpu = tree.seconds
        finally:
            services.close()
    added = sum(o.outcome is Outcome.ADDED for o in outcomes)
    return added / wall, 100 * cpu / wall, added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "eval" / "museum-paintings",
    )
    parser.add_argument("--repeats", type=int, default=1, help="ingests per configuration")
    parser.add_argument("--stage-photos", type=int, default=60)
    parser.add_argument("--no-queries", action="store_true")
    args = parser.parse_args()
    set_dir: Path = args.set.resolve()
    # The threads `artmatch` itself sets (one BLAS thread), so that the figures are the CLI's.
    configure_threads(Settings().threads)
    keep_freed_memory(Settings().keep_freed_mb)
    print(f"set {set_dir}; cores {os.cpu_count()}; load average before {os.getloadavg()}")

    with tempfile.TemporaryDirectory(prefix="bench-models-") as model_tmp:
        model_dir = Path(model_tmp)
        # Built (and exported) once, outside every timing.
        embedders = {
            rt: create_embedder(EmbedderSettings(runtime=rt, model_dir=model_dir))  # type: ignore[arg-type]
            for rt in RUNTIMES
        }
        stage_table(set_dir, embedders, args.stage_photos)

        print(f"\ningest end to end (median of {args.repeats}; CPU % of one core)")
        # CPU ms a photo says what a photo costs whatever share of the cores this process got.
        print(
            f"  {'runtime':<8} {'workers':>7} {'photos/s':>9} {'CPU %':>7} "
            f"{'CPU ms/photo':>12} {'added':>6}"
        )
        configs = [(runtime, workers) for runtime in RUNTIMES for workers in (1, 2)]
        runs: dict[tuple[str, int], list[tuple[float, float, int]]] = {c: [] for c in configs}
        # Configurations alternate within each repeat, so a change of load hits them all.
        for _ in range(args.repeats):
            for runtime, workers in configs:
                run = ingest_once(
                    set_dir,
                    embedder=embedders[runtime],
                    runtime=runtime,
                    workers=workers,
                    model_dir=model_dir,
                )
                runs[runtime, workers].append(run)
                print(
                    f"    (run: {runtime} {workers} worker(s) {run[0]:.1f} photos/s, "
                    f"CPU {run[1]:.0f} %, load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        rates: dict[tuple[str, int], float] = {}
        for (runtime, workers), measured in runs.items():
            rate = statistics.median(r[0] for r in measured)
            cpu = statistics.median(r[1] for r in measured)
            rates[runtime, workers] = rate
            cost = 10 * cpu / rate
            print(
                f"  {runtime:<8} {workers:>7} {rate:>9.1f} {cpu:>7.0f} {cost:>12.0f} "
                f"{measured[0][2]:>6}"
            )
        base = rates["torch", 1]
        print(f"  onnx + 2 workers vs torch in-process: {rates['onnx', 2] / base:.2f}x")

        if not args.no_queries:
            print("\nqueries (artmatch eval, verify on; its own ingest uses 2 workers)")
            print(f"  {'runtime':<8} {'p50 ms':>7} {'p95 ms':>7} {'recall@1':>9} {'ingest/s':>9}")
            for runtime in RUNTIMES:
                with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
                    settings = Settings(
                        home=Path(tmp),
                        embedder=EmbedderSettings(runtime=runtime, model_dir=model_dir),  # type: ignore[arg-type]
                        ingest=IngestSettings(workers=2),
                    )
                    figures = run_eval(
                        set_dir, settings=settings, embedder=embedders[runtime]
                    ).as_dict()
                print(
                    f"  {runtime:<8} {figures['query_ms_p50']:>7} {figures['query_ms_p95']:>7}"
                    f" {figures['recall@1']:>9} {figures['ingest_images_per_s']:>9}"
                )
    print(f"\nload average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
