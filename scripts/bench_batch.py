"""Listing checks per second on a Dask LocalCluster with 1 and 2 workers (and in-process), and
a run killed with SIGKILL mid-way then resumed: nothing lost, nothing repeated.

    python scripts/bench_batch.py [--listings 1000] [--workers 1,2] [--no-baseline] [--no-kill]

The catalogue is /work/shared/eval/museum-paintings (287 photos, every object marked stolen
so that each listing is verified against real candidates), ingested into a temporary home
with the real CNN; the listings are its 112 query photos repeated under new listing ids, each
repetition cropped a little more (1 % a side per round), so that no two photos are the same
file. Every configuration (in-process, then each worker count) checks the same listings under
its own manifest (a new source), so nothing is skipped and the rates compare.
Rates include starting the cluster and loading one model per worker ("total"), and also
from the first committed chunk on ("steady").
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from sqlalchemy import create_engine, func, select  # noqa: E402

from engine.services import build_services  # noqa: E402
from ingest.catalogue_csv import iter_items, read_catalogue_csv  # noqa: E402
from ingest.listings import check_listings  # noqa: E402
from ingest.photos import ingest_photos  # noqa: E402
from kernel.enums import ObjectStatus  # noqa: E402
from kernel.schemas import StatusChange  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from storage.catalogue.orm import ListingCheck  # noqa: E402

__all__ = ["main"]


def _listings(queries: list[Path], folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        src = queries[i % len(queries)]
        margin = (i // len(queries)) * 0.01
        with Image.open(src) as img:
            w, h = img.size
            crop = img.convert("RGB").crop(
                (int(w * margin), int(h * margin), int(w * (1 - margin)), int(h * (1 - margin)))
            )
            buf = io.BytesIO()
            crop.save(buf, "JPEG", quality=90)
        name = f"l{i:05d}.jpg"
        (folder / name).write_bytes(buf.getvalue())
        rows.append({"listing_id": f"lot-{i}", "image": name})
    manifest = folder / "all.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def _copy_manifest(manifest: Path, name: str) -> Path:
    # Same photos, another file: another source, so nothing counts as already checked.
    path = manifest.with_name(name)
    path.write_text(manifest.read_text())
    return path


def _timed(settings: Settings, manifest: Path, *, scheduler: str) -> dict[str, object]:
    services = build_services(settings)
    first: list[float] = []

    def progress(done: int, total: int) -> None:
        if not first:
            first.append(time.perf_counter())
            first.append(done)

    start = time.perf_counter()
    run = check_listings(services, manifest, scheduler=scheduler, on_progress=progress)
    end = time.perf_counter()
    services.catalogue.close()
    steady = (run.total - first[1]) / (end - first[0]) if first and end > first[0] else 0.0
    return {
        "listings": run.total,
        "checked": run.checked,
        "errors": len(run.errors),
        "hits": run.hits,
        "seconds": end - start,
        "total/s": run.total / (end - start),
        "steady/s": steady,
    }


def _count(database: Path, source_like: str) -> tuple[int, int]:
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        where = ListingCheck.source.like(source_like)
        rows = conn.scalar(select(func.count()).select_from(ListingCheck).where(where)) or 0
        distinct = conn.scalar(
            select(func.count()).select_from(
                select(ListingCheck.listing_id).where(where).distinct().subquery()
            )
        )
    engine.dispose()
    return rows, distinct or 0


def _kill_and_resume(settings: Settings, manifest: Path, *, workers: int) -> dict[str, object]:
    env = os.environ | {
        "ARTMATCH_HOME": str(settings.home),
        "ARTMATCH_BATCH__WORKERS": str(workers),
        "ARTMATCH_BATCH__MIN_LISTINGS": "0",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-c", "from cli.main import main; main()", "check-listings"]
    command += [str(manifest), "--scheduler", "local", "--out", str(manifest.with_suffix(""))]
    database = settings.home / "catalogue.sqlite3"
    like = f"%{manifest.name}"
    n = len(manifest.read_text().splitlines())
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while _count(database, like)[0] < n // 3:
            if proc.poll() is not None:
                raise SystemExit("the run to be killed ended first")
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the cluster it had started
    at_kill = _count(database, like)[0]
    resumed = subprocess.run(
        command, env=env, capture_output=True, text=True, start_new_session=True
    )
    seconds = time.perf_counter() - start
    rows, distinct = _count(database, like)
    return {
        "listings": n,
        "at kill": at_kill,
        "exit": resumed.returncode,
        "rows": rows,
        "lost": n - distinct,
        "repeated": rows - distinct,
        "seconds": seconds,
        "said": resumed.stdout.strip().splitlines()[0] if resumed.stdout else resumed.stderr[-300:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--eval",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "eval" / "museum-paintings",
    )
    parser.add_argument("--listings", type=int, default=1000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the in-process run of the same listings"
    )
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 and resume run")
    args = parser.parse_args()

    load = os.getloadavg()
    print(f"cores: {os.cpu_count()}, load average at start: {load[0]:.1f} {load[1]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home")
        settings.batch.chunk_size = args.chunk_size
        settings.batch.min_listings = 0
        services = build_services(settings)
        t = time.perf_counter()
        ingest_photos(services, iter_items(read_catalogue_csv(args.eval / "catalogue.csv")))
        with (args.eval / "catalogue.csv").open(newline="") as fh:
            object_ids = {row["object_id"] for row in csv.DictReader(fh)}
        for object_id in sorted(object_ids):
            services.catalogue.set_status(object_id, StatusChange(status=ObjectStatus.STOLEN))
        services.close()
        print(f"catalogue ingested in {time.perf_counter() - t:.0f} s")
        queries = sorted((args.eval / "queries").glob("*.jpg"))
        manifest = _listings(queries, Path(tmp) / "listings", args.listings)

        results: list[tuple[str, dict[str, object]]] = []
        if not args.no_baseline:
            path = _copy_manifest(manifest, "inprocess.jsonl")
            results.append(("in-process", _timed(settings, path, scheduler="none")))
            print(results[-1])
        for w in (int(x) for x in args.workers.split(",")):
            settings.batch.workers = w
            path = _copy_manifest(manifest, f"workers{w}.jsonl")
            results.append((f"dask {w} worker(s)", _timed(settings, path, scheduler="local")))
            print(results[-1])
        print()
        print(
            f"{'run':<20} {'listings':>8} {'checked':>8} {'errors':>6} {'seconds':>8} "
            f"{'total/s':>8} {'steady/s':>8}"
        )
        for name, r in results:
            print(
                f"{name:<20} {r['listings']:>8} {r['checked']:>8} {r['errors']:>6} "
                f"{r['seconds']:>8.1f} {r['total/s']:>8.2f} {r['steady/s']:>8.2f}"
            )
        if not args.no_kill:
            w = max(int(x) for x in args.workers.split(","))
            k = _kill_and_resume(settings, _copy_manifest(manifest, "killed.jsonl"), workers=w)
            print()
            print(
                f"kill -9 at {k['at kill']} of {k['listings']} committed, then resumed "
                f"({w} workers, {k['seconds']:.0f} s in all): exit {k['exit']}, "
                f"{k['rows']} checks stored, {k['lost']} lost, {k['repeated']} repeated"
            )
            print(f"  resumed run said: {k['said']}")
        load = os.getloadavg()
        print(f"load average at end: {load[0]:.1f} {load[1]:.1f}")


if __name__ == "__main__":
    main()
