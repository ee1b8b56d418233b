"""`artmatch eval`: measure retrieval on a set in the evaluation layout.

Layout (see ../shared/eval/README.md): ``catalogue.csv`` (image, object_id, ...), ``queries/``,
``ground_truth.json`` = ``{"queries": [{"image": ..., "objects": [ids]}]}``; ``objects: []``
means the right answer is "no match". A throw-away catalogue is built in a temporary directory
with the same pipeline as `import-catalogue`, so ingest speed is measured on the real path.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artmatch.config import Settings
from artmatch.container import build_services
from artmatch.errors import InvalidInput
from artmatch.matching import search
from artmatch.schemas import ObjectCreate
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import Outcome, PhotoItem, ingest_photos
from models.embedders import Embedder
from models.images import decode_image

__all__ = ["EvalReport", "run_eval"]

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".gif"}

Progress = Callable[[str, int, int], None]


@dataclass
class EvalReport:
    queries: int
    catalogue_images: int
    recall_at: dict[int, float]
    mrr: float
    unknown_queries: int
    false_match_rate: float | None
    ingest_images_per_s: float
    query_ms: list[float] = field(repr=False)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        ms = np.asarray(self.query_ms) if self.query_ms else np.zeros(1)
        return {
            "queries": self.queries,
            "catalogue_images": self.catalogue_images,
            "recall@1": round(self.recall_at[1], 4),
            "recall@5": round(self.recall_at[5], 4),
            "recall@10": round(self.recall_at[10], 4),
            "mrr": round(self.mrr, 4),
            "unknown_queries": self.unknown_queries,
            "false_match_rate": None
            if self.false_match_rate is None
            else round(self.false_match_rate, 4),
            "ingest_images_per_s": round(self.ingest_images_per_s, 2),
            "query_ms_p50": round(float(np.percentile(ms, 50)), 1),
            "query_ms_p95": round(float(np.percentile(ms, 95)), 1),
        }


def _distractor_items(directory: Path) -> list[PhotoItem]:
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise InvalidInput(f"{directory}: no images found for distractors")
    return [
        PhotoItem(
            record=ObjectCreate(
                object_id=f"distractor:{p.relative_to(directory).as_posix().replace('/', '_')}",
                institution="distractors",
            ),
            source=str(p),
            load=lambda p=p: p.read_bytes(),
        )
        for p in files
    ]


def _ground_truth(set_dir: Path) -> list[dict[str, object]]:
    gt_path = set_dir / "ground_truth.json"
    try:
        queries = json.loads(gt_path.read_text())["queries"]
    except FileNotFoundError:
        raise InvalidInput(f"{gt_path}: no such file (is {set_dir} in the eval layout?)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{gt_path}: not in the expected format ({exc})") from None
    return list(queries)


def run_eval(
    set_dir: Path,
    *,
    settings: Settings,
    embedder: Embedder,
    distractors: Path | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    set_dir = Path(set_dir)
    queries = _ground_truth(set_dir)
    parsed = read_catalogue_csv(set_dir / "catalogue.csv", institution="eval")
    items = list(iter_items(parsed))
    if distractors is not None:
        items += _distractor_items(Path(distractors))
    with tempfile.TemporaryDirectory(prefix="artmatch-eval-") as tmp:
        run_settings = settings.model_copy(
            update={
                "home": Path(tmp),
                "storage": settings.storage.model_copy(
                    update={"backend": "local", "path": None, "database_url": None}
                ),
                "index": settings.index.model_copy(update={"path": None}),
            }
        )
        services = build_services(run_settings, embedder=embedder)
        try:
            done = 0

            def on_outcome(_: object) -> None:
                nonlocal done
                done += 1
                if progress:
                    progress("ingest", done, len(items))

            start = time.perf_counter()
            outcomes = ingest_photos(services, items, on_outcome=on_outcome)
            elapsed = time.perf_counter() - start
            added = sum(o.outcome is Outcome.ADDED for o in outcomes)
            failures = [o.message for o in outcomes if o.outcome is Outcome.ERROR]
            return _run_queries(
                services,
                set_dir,
                queries,
                added=added,
                ingest_s=elapsed,
                failures=failures,
                progress=progress,
            )
        finally:
            services.close()


def _run_queries(services, set_dir, queries, *, added, ingest_s, failures, progress) -> EvalReport:  # type: ignore[no-untyped-def]
    ranks: list[float] = []
    unknown_hits: list[bool] = []
    times: list[float] = []
    for n, query in enumerate(queries, start=1):
        path = set_dir / str(query["image"])
        expected = set(query.get("objects") or [])
        data = path.read_bytes()
        start = time.perf_counter()
        image = decode_image(data, source=str(path), max_pixels=services.settings.max_image_pixels)
        result = search(services, image, top_k=10)
        times.append((time.perf_counter() - start) * 1000)
        if expected:
            found = [h.rank for h in result.hits if h.object_id in expected]
            ranks.append(min(found) if found else np.inf)
        else:
            unknown_hits.append(bool(result.matches))
        if progress:
            progress("queries", n, len(queries))
    ranks_arr = np.asarray(ranks, dtype=np.float64)
    recall = {k: float(np.mean(ranks_arr <= k)) if len(ranks_arr) else 0.0 for k in (1, 5, 10)}
    mrr = (
        float(np.mean(np.where(np.isfinite(ranks_arr), 1.0 / ranks_arr, 0.0)))
        if len(ranks_arr)
        else 0.0
    )
    return EvalReport(
        queries=len(queries),
        catalogue_images=added,
        recall_at=recall,
        mrr=mrr,
        unknown_queries=len(unknown_hits),
        false_match_rate=float(np.mean(unknown_hits)) if unknown_hits else None,
        ingest_images_per_s=added / ingest_s if ingest_s > 0 else 0.0,
        query_ms=times,
        failures=failures,
    )
