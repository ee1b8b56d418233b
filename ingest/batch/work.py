"""One listing check as a task (client -> worker), a computation (worker) and a commit
(client): workers only read the catalogue, the client alone writes it, so SQLite works and
an interrupted run leaves only whole listings behind.

A chunk's commit is idempotent: a listing whose (source, listing_id, photo) is stored as
checked when its result arrives (a chunk resubmitted after a worker died, or a run resumed
next to another) is counted as skipped and nothing of it is written again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.search import search
from engine.services import Services
from ingest.recheck import Hit, ListingDetails, listing_features, record_hit
from kernel.enums import LOST_STATUSES
from kernel.errors import ArtmatchError
from models.images import decode_image
from models.local_features import FEATURES_KEY
from storage.catalogue.alerts import AlertRecord, AlertStore

__all__ = [
    "ChunkMapper",
    "Committed",
    "InProcessMapper",
    "ListingOutcome",
    "ListingTask",
    "chunked",
    "commit_chunk",
    "commit_outcome",
    "compute",
    "compute_chunk",
    "model_version",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListingTask:
    """A listing whose photo was read (by the client: workers need no manifest folder)."""

    #: Position in the manifest: results come back in completion order.
    index: int
    details: ListingDetails
    image: str
    data: bytes
    #: The columns of its stored check that the manifest gives (`ingest.listings._record`).
    record: dict[str, object]

    @property
    def key(self) -> tuple[str, str, str]:
        d = self.details
        return (d.source, d.listing_id, d.image_sha256)


@dataclass
class ListingOutcome:
    """What a worker computed for a listing: everything the client stores, nothing read back."""

    task: ListingTask
    #: The full row of the listing check (with the error, or the matches).
    check: dict[str, object]
    error: str | None = None
    #: Kept for re-checks (`ingest.recheck`); None when they could not be computed.
    features: bytes | None = None
    vector: np.ndarray | None = None
    model: str = ""
    hits: list[tuple[str, Hit]] = field(default_factory=list)


@dataclass
class Committed:
    """What committing a chunk did, for the run's counters."""

    checked: int = 0
    skipped: int = 0
    hits: int = 0
    #: (manifest index, message) of each listing stored with an error.
    errors: list[tuple[int, str]] = field(default_factory=list)
    new_alerts: list[AlertRecord] = field(default_factory=list)


class ChunkMapper(Protocol):
    """Turns chunks of tasks into their outcomes, in any order (one list per chunk)."""

    def map(
        self, chunks: Iterable[list[ListingTask]]
    ) -> Generator[list[ListingOutcome], None, None]: ...


def model_version(services: Services) -> str:
    return f"{services.embedder.name} {services.embedder.version}"


def chunked(tasks: Iterable[ListingTask], size: int) -> Iterator[list[ListingTask]]:
    chunk: list[ListingTask] = []
    for task in tasks:
        chunk.append(task)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _failed(task: ListingTask, message: str, model: str) -> ListingOutcome:
    check = task.record | {
        "model_version": model,
        "error": message,
        "image_sha256": task.details.image_sha256,
    }
    return ListingOutcome(task=task, check=check, error=message, model=model)


def compute(services: Services, task: ListingTask) -> ListingOutcome:
    """Search a listing's photo against the lost objects; reads only."""
    model = model_version(services)
    try:
        image = decode_image(
            task.data, source=task.image, max_pixels=services.settings.max_image_pixels
        )
        result = search(services, image, top_k=5, statuses=list(LOST_STATUSES))
    except ArtmatchError as exc:
        return _failed(task, str(exc), model)
    except Exception:
        # One odd photo must not sink the listings after it; the log keeps the details.
        log.exception("listing %s could not be searched", task.details.listing_id)
        return _failed(
            task, f"{task.image!r} could not be searched (an internal error; see the log)", model
        )
    matches = [
        {
            "object_id": h.object_id,
            "similarity": h.similarity,
            "confidence": h.confidence,
            # The threshold that decided this match, and the quantity it applies to.
            "threshold": result.threshold,
            "threshold_on": result.threshold_on.value,
            "status": h.status.value,
            "institution": h.institution,
            "title": h.title,
            "loss_reference": h.loss_reference,
        }
        for h in result.matches
    ]
    best = result.hits[0] if result.hits else None
    outcome = ListingOutcome(
        task=task,
        check=task.record
        | {
            "model_version": model,
            "image_sha256": task.details.image_sha256,
            "is_hit": bool(matches),
            "best_object_id": best.object_id if best else None,
            # The catalogue's column keeps its name; it holds the best hit's similarity.
            "best_similarity": best.similarity if best else None,
            "matches_json": json.dumps(matches),
        },
        model=model,
        hits=[
            (
                m.object_id,
                Hit(
                    listing=task.details,
                    confidence=m.confidence or 0.0,
                    inliers=m.inliers or 0,
                    similarity=m.similarity,
                ),
            )
            for m in result.matches
        ],
    )
    try:
        # Computed here so that the client stores them without the photo.
        outcome.features, outcome.vector = listing_features(services, image)
    except ArtmatchError as exc:
        # The check stands; only a later re-check of this photo is lost (and logged).
        log.warning("features of listing %s not kept: %s", task.details.listing_id, exc)
    return outcome


def compute_chunk(services: Services, tasks: Sequence[ListingTask]) -> list[ListingOutcome]:
    return [compute(services, task) for task in tasks]


def commit_outcome(
    services: Services, outcome: ListingOutcome, *, store: AlertStore
) -> list[AlertRecord]:
    """Store one listing's check: its features and sightings first, the check last, so that
    a listing stored as checked always has them (an interrupted commit is redone whole:
    features and sightings are stored once, by their unique keys)."""
    alerts: list[AlertRecord] = []
    if outcome.error is None:
        if outcome.features is not None and outcome.vector is not None:
            store.store_listing_features(
                image_sha256=outcome.task.details.image_sha256,
                features=outcome.features,
                method=FEATURES_KEY,
                model=outcome.model,
                vector=outcome.vector,
            )
        for object_id, hit in outcome.hits:
            alert = record_hit(services, store, object_id=object_id, hit=hit, origin="check")
            if alert is not None:
                alerts.append(alert)
    services.catalogue.record_listing_check(outcome.check)
    return alerts


def commit_chunk(services: Services, outcomes: Sequence[ListingOutcome]) -> Committed:
    """Store a chunk's outcomes, skipping listings already stored as checked (idempotent)."""
    done = services.catalogue.checked_listing_photos(
        (o.task.details.source, o.task.details.listing_id) for o in outcomes
    )
    store = AlertStore(services.catalogue.engine)
    result = Committed()
    for outcome in outcomes:
        source, listing_id, sha = outcome.task.key
        if sha in done.get((source, listing_id), ()):
            result.skipped += 1
            continue
        result.new_alerts += commit_outcome(services, outcome, store=store)
        if outcome.error is not None:
            result.errors.append((outcome.task.index, f"listing {listing_id}: {outcome.error}"))
        else:
            result.checked += 1
            result.hits += bool(outcome.hits)
    return result


class InProcessMapper:
    """Computes each chunk in this process, with the caller's services."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def map(
        self, chunks: Iterable[list[ListingTask]]
    ) -> Generator[list[ListingOutcome], None, None]:
        for chunk in chunks:
            yield compute_chunk(self._services, chunk)
