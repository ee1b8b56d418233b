"""Third stage: decide. The evidence on each candidate becomes its confidence, the
candidates a ranking, and the confident verified ones the owners of the query's regions.

Confidence is the shipped calibration (`models.calibration`) of the similarity, the inliers
and the margin (similarity minus that of the nearest other object). Because the calibration
is monotone in all three, a candidate with no verification evidence keeps its global order:
photos with few keypoints (small 3-D objects) are never ranked worse than by the CNN alone.

Nothing here reads storage or runs a model: inputs are the candidates, the calibration and
settings values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.search.candidates import Candidate
from kernel.enums import ThresholdOn
from kernel.settings import MatchSettings
from models.calibration import Calibration, default_calibration, object_margins

__all__ = [
    "assign_regions",
    "below_threshold",
    "calibrate",
    "decision_threshold",
    "rank_by_confidence",
    "rank_by_similarity",
]

#: Two verified objects whose matched boxes overlap more than this share one region.
_SAME_REGION_IOU = 0.5


def decision_threshold(
    settings: MatchSettings, *, verify: bool | None = None
) -> tuple[float, ThresholdOn]:
    """The threshold a search decides matches with, and the quantity it applies to;
    ``verify`` overrides the setting."""
    if settings.verify if verify is None else verify:
        threshold = settings.confidence_threshold or default_calibration().threshold
        return threshold, ThresholdOn.CONFIDENCE
    return settings.similarity_threshold, ThresholdOn.SIMILARITY


def calibrate(
    candidates: Sequence[Candidate],
    calibration: Calibration,
    *,
    background: np.ndarray | None = None,
) -> None:
    """Margin and confidence of every candidate, in place.

    ``background``: best similarities of catalogue objects that are not candidates (outside
    a status or institution filter): a candidate must stand out from those too.
    """
    if not candidates:
        return
    similarities = np.array([c.similarity for c in candidates])
    margins = object_margins(similarities, background)
    confidences = calibration.probability(
        similarities, np.array([c.inliers for c in candidates]), margins
    )
    for cand, margin, p in zip(candidates, margins, confidences, strict=True):
        cand.margin = float(margin)
        cand.confidence = float(p)


def below_threshold(candidates: Sequence[Candidate], threshold: float) -> list[Candidate]:
    """The calibrated candidates whose confidence is below ``threshold``."""
    return [c for c in candidates if c.confidence < threshold]


def rank_by_confidence(candidates: list[Candidate]) -> None:
    """Most confident first, ties broken by similarity, in place (stable)."""
    candidates.sort(key=lambda c: (-c.confidence, -c.similarity))


def rank_by_similarity(candidates: list[Candidate]) -> None:
    """Most similar first, in place (stable)."""
    candidates.sort(key=lambda c: -c.similarity)


def assign_regions(candidates: Sequence[Candidate], threshold: float) -> list[Candidate]:
    """The matched objects that each own a region of the query, most confident first.

    A verified match at or above the confidence ``threshold`` brings its matched box;
    overlapping boxes are one region, held by the likelier object (the other stays in the
    ranked list as an alternative).
    """
    owners: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: -c.confidence):
        if cand.confidence < threshold or not cand.verified:
            continue
        box = cand.verification.query_box if cand.verification else None
        if box is None or box.area <= 0:
            continue
        if all(box.iou(o.region) < _SAME_REGION_IOU for o in owners if o.region is not None):
            cand.region = box
            owners.append(cand)
    return owners
