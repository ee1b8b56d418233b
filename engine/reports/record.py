"""What a search covered and what came back, as the search log keeps it
(`storage.catalogue.search_log.SearchRecord`): the facts a report is later made from."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import kernel
from engine.services import Services
from kernel.schemas import SearchResult
from models.local_features import FEATURES_KEY
from storage.catalogue.search_log import SearchCoverage, SearchRecord, StoredHit

__all__ = ["matcher_version", "search_record"]


@lru_cache(maxsize=1)
def matcher_version() -> str:
    """The local-feature matcher and its calibration: the date the calibration was fitted
    and the start of its file's SHA-256, so two reports name the same calibration exactly."""
    import models.calibration as calibration

    path = Path(calibration.__file__).with_name("calibration.json")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    fitted = calibration.default_calibration().provenance.get("fitted", "unknown")
    return f"{FEATURES_KEY} + RANSAC; calibration fitted {fitted} sha256:{digest}"


def search_record(services: Services, result: SearchResult) -> SearchRecord:
    """The record of ``result`` at this moment (counts are taken now, with the search)."""
    # Counted by the search itself (its filter's photo ids), not by a second query.
    photos = result.photos_searched if result.photos_searched is not None else services.index.size
    coverage = SearchCoverage(
        statuses=[str(s) for s in result.statuses] if result.statuses else None,
        institutions=list(result.institutions) if result.institutions else None,
        objects_searched=result.objects_searched,
        photos_searched=photos,
        index_version=result.index_version,
        model=result.model,
        matcher=matcher_version() if result.verification else "none (global descriptors only)",
        service_version=kernel.__version__,
        verification=result.verification,
        threshold=result.threshold,
        threshold_on=str(result.threshold_on),
        query_size=result.query_size,
    )
    hits = [
        StoredHit(
            rank=h.rank,
            object_id=h.object_id,
            institution=h.institution,
            photo_id=h.photo_id,
            similarity=h.similarity,
            confidence=h.confidence,
            decision=str(h.decision),
            inliers=h.inliers,
            region=h.region,
            threshold=result.threshold,
            threshold_on=str(result.threshold_on),
        )
        for h in result.hits
    ]
    return SearchRecord(coverage=coverage, hits=hits)
