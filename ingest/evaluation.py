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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.search import search
from engine.services import Services, build_services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import IngestOutcome, Outcome, PhotoItem, ingest_photos
from kernel.errors import InvalidInput
from kernel.schemas import ObjectCreate, SearchResult
from kernel.settings import Settings
from models.embedders import Embedder
from models.images import decode_image

__all__ = ["EvalReport", "eval_catalogue", "run_eval", "unverified_objects", "wrong_matches"]

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".gif"}

Progress = Callable[[str, int, int], None]


@dataclass
class EvalReport:
    queries: int
    catalogue_images: int
    recall_at: dict[int, float]
    recall1_global: float
    mrr: float
    unknown_queries: int
    false_match_rate: float | None
    multi_object_recall: float | None
    #: Queries (of all) that call an object not in their ground truth a match.
    wrong_match_queries: int
    #: Queries with objects where one of them is only a lead (similar, not verified).
    unverified_lead_queries: int
    ingest_images_per_s: float
    query_ms: list[float] = field(repr=False)
    failures: list[str] = field(default_factory=list)

    @property
    def known_queries(self) -> int:
        """Queries whose ground truth names at least one catalogue object."""
        return self.queries - self.unknown_queries

    def as_dict(self) -> dict[str, object]:
        ms = np.asarray(self.query_ms) if self.query_ms else np.zeros(1)
        return {
            "queries": self.queries,
            "catalogue_images": self.catalogue_images,
            "recall@1": round(self.recall_at[1], 4),
            "recall@5": round(self.recall_at[5], 4),
            "recall@10": round(self.recall_at[10], 4),
            "recall@1_global": round(self.recall1_global, 4),
            "mrr": round(self.mrr, 4),
            "unknown_queries": self.unknown_queries,
            "false_match_rate": None
            if self.false_match_rate is None
            else round(self.false_match_rate, 4),
            "multi_object_recall": None
            if self.multi_object_recall is None
            else round(self.multi_object_recall, 4),
            "wrong_match_queries": self.wrong_match_queries,
            "wrong_match_rate": round(self.wrong_match_queries / self.queries, 4)
            if self.queries
            else None,
            "unverified_lead_queries": self.unverified_lead_queries,
            "unverified_leads": round(self.unverified_lead_queries / self.known_queries, 4)
            if self.known_queries
            else None,
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
            load=p.read_bytes,
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


@contextmanager
def eval_catalogue(
    set_dir: Path,
    *,
    settings: Settings,
    embedder: Embedder,
    distractors: Path | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[Services, list[IngestOutcome], float]]:
    """A throw-away catalogue of ``set_dir`` (plus distractors) in a temporary directory:
    yields (services, ingest outcomes, ingest seconds)."""
    parsed = read_catalogue_csv(Path(set_dir) / "catalogue.csv", institution="eval")
    items = list(iter_items(parsed))
    if distractors is not None:
        items += _distractor_items(Path(distractors))
    with tempfile.TemporaryDirectory(prefix="artmatch-eval-") as tmp:
        storage = settings.storage.model_copy(
            update={"backend": "local", "path": None, "database_url": None}
        )
        run_settings = settings.model_copy(
            update={
                "home": Path(tmp),
                "storage": storage,
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
            yield services, outcomes, time.perf_counter() - start
        finally:
            services.close()


def run_eval(
    set_dir: Path,
    *,
    settings: Settings,
    embedder: Embedder,
    distractors: Path | None = None,
    verify: bool = True,
    progress: Progress | None = None,
) -> EvalReport:
    set_dir = Path(set_dir)
    queries = _ground_truth(set_dir)
    with eval_catalogue(
        set_dir, settings=settings, embedder=embedder, distractors=distractors, progress=progress
    ) as (services, outcomes, elapsed):
        added = sum(o.outcome is Outcome.ADDED for o in outcomes)
        failures = [o.message for o in outcomes if o.outcome is Outcome.ERROR]
        return _run_queries(
            services,
            set_dir,
            queries,
            added=added,
            ingest_s=elapsed,
            failures=failures,
            verify=verify,
            progress=progress,
        )


def wrong_matches(result: SearchResult, expected: set[str]) -> list[str]:
    """Objects the result calls a match that the query does not show."""
    return [h.object_id for h in result.matches if h.object_id not in expected]


def unverified_objects(result: SearchResult, expected: set[str]) -> set[str]:
    """Objects the query shows that the result offers only as leads (never as a match)."""
    matched = {h.object_id for h in result.matches}
    return {h.object_id for h in result.leads if h.object_id in expected} - matched


def _rank(result: SearchResult, expected: set[str]) -> float:
    found = [h.rank for h in result.hits if h.object_id in expected]
    return min(found) if found else np.inf


def _run_queries(  # type: ignore[no-untyped-def]
    services, set_dir, queries, *, added, ingest_s, failures, verify, progress
) -> EvalReport:
    ranks: list[float] = []
    global_ranks: list[float] = []
    unknown_hits: list[bool] = []
    wrong = unverified = 0
    multi_found = multi_total = 0
    times: list[float] = []
    for n, query in enumerate(queries, start=1):
        path = set_dir / str(query["image"])
        expected = set(query.get("objects") or [])
        data = path.read_bytes()
        start = time.perf_counter()
        image = decode_image(data, source=str(path), max_pixels=services.settings.max_image_pixels)
        result = search(services, image, top_k=10, verify=verify)
        times.append((time.perf_counter() - start) * 1000)
        wrong += bool(wrong_matches(result, expected))
        if expected:
            unverified += bool(unverified_objects(result, expected))
            ranks.append(_rank(result, expected))
            first = result if not verify else search(services, image, top_k=10, verify=False)
            global_ranks.append(_rank(first, expected))
            if len(expected) > 1:
                matched = {h.object_id for h in result.hits if h.is_match}
                multi_found += len(expected & matched)
                multi_total += len(expected)
        else:
            unknown_hits.append(bool(result.matches))
        if progress:
            progress("queries", n, len(queries))
    return EvalReport(
        queries=len(queries),
        catalogue_images=added,
        recall_at={k: _recall(ranks, k) for k in (1, 5, 10)},
        recall1_global=_recall(global_ranks, 1),
        mrr=_mrr(ranks),
        unknown_queries=len(unknown_hits),
        false_match_rate=float(np.mean(unknown_hits)) if unknown_hits else None,
        multi_object_recall=multi_found / multi_total if multi_total else None,
        wrong_match_queries=wrong,
        unverified_lead_queries=unverified,
        ingest_images_per_s=added / ingest_s if ingest_s > 0 else 0.0,
        query_ms=times,
        failures=failures,
    )


def _recall(ranks: list[float], k: int) -> float:
    return float(np.mean(np.asarray(ranks) <= k)) if ranks else 0.0


def _mrr(ranks: list[float]) -> float:
    if not ranks:
        return 0.0
    arr = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(np.where(np.isfinite(arr), 1.0 / arr, 0.0)))
