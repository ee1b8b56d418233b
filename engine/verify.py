"""The second stage: verify the global candidates with local features and geometry, fuse the
evidence into a calibrated probability, and find the objects of multi-object photos.

Candidates come from the whole photo (and its centre crops) and from each proposed region, so
a photo of a table with several objects brings each object into the pool. Every candidate's
best catalogue photo is matched against the query's local features; the inlier count and the
global cosine go through the calibration. Because the calibration is monotone in both, a
candidate with no verification evidence keeps its global order: photos with few keypoints
(small 3-D objects) are never ranked worse than by the CNN alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.services import Services
from models.calibration import Calibration, object_margins
from models.local_features import FEATURES_KEY, LocalFeatures
from models.regions import Box, propose_regions
from models.verification import Verification, verify

__all__ = [
    "Candidate",
    "assign_regions",
    "pool_candidates",
    "query_regions",
    "score_candidates",
    "verify_pairs",
]

#: Candidates taken from each proposed region's own search.
_PER_REGION = 3
#: Two verified objects whose matched boxes overlap more than this share one region.
_SAME_REGION_IOU = 0.5
#: Candidates (best global first) for which a mirrored query is tried too.
_MIRROR_TOP = 3
#: A matched box at least this share of the query is the whole photo, not a region.
_WHOLE_FRACTION = 0.8


@dataclass
class Candidate:
    object_id: str
    photo_id: int
    similarity: float
    inliers: int = 0
    verification: Verification | None = None
    #: Cosine minus that of the nearest other catalogue object.
    margin: float = 0.0
    confidence: float = 0.0
    region: Box | None = None

    @property
    def verified(self) -> bool:
        return self.verification is not None and self.verification.is_match


def _best_per_object(
    scores: np.ndarray, ids: np.ndarray, photo_to_object: dict[int, str]
) -> dict[str, Candidate]:
    best: dict[str, Candidate] = {}
    for score, pid in zip(scores.reshape(-1), ids.reshape(-1), strict=True):
        obj = photo_to_object.get(int(pid)) if pid >= 0 else None
        if obj is not None and (obj not in best or score > best[obj].similarity):
            best[obj] = Candidate(object_id=obj, photo_id=int(pid), similarity=float(score))
    return best


def pool_candidates(
    *,
    whole: tuple[np.ndarray, np.ndarray],
    regions: Sequence[tuple[np.ndarray, np.ndarray]],
    top: int,
    photo_to_object: dict[int, str],
) -> dict[str, Candidate]:
    """Top candidates of the whole photo plus the top few of each region, best cosine each."""
    pool = dict(
        sorted(_best_per_object(*whole, photo_to_object).items(), key=lambda kv: -kv[1].similarity)[
            :top
        ]
    )
    for scores, ids in regions:
        ranked = sorted(
            _best_per_object(scores, ids, photo_to_object).values(), key=lambda c: -c.similarity
        )
        for cand in ranked[:_PER_REGION]:
            if cand.object_id not in pool or cand.similarity > pool[cand.object_id].similarity:
                pool[cand.object_id] = cand
    return pool


def query_regions(image_rgb: np.ndarray, max_regions: int) -> list[Box]:
    """Proposed object regions, without the whole photo (which is searched anyway)."""
    if max_regions <= 0:
        return []
    h, w = image_rgb.shape[:2]
    return [
        b
        for b in propose_regions(image_rgb, max_regions=max_regions + 1, include_whole=False)
        if (b.x1 - b.x0) * (b.y1 - b.y0) < 0.9 * w * h
    ][:max_regions]


def verify_pairs(
    services: Services,
    query_features: LocalFeatures,
    candidates: Sequence[Candidate],
    *,
    mirror_top: int = _MIRROR_TOP,
) -> None:
    """Match every candidate's stored local features into the query, in place.

    Mirror images are tried for the ``mirror_top`` best global candidates only: the CNN
    descriptor is nearly mirror-invariant, so a mirrored photo of a catalogue object still
    ranks it high, and the extra attempt doubles the cost of every non-matching pair.
    """
    stored = services.catalogue.local_features([c.photo_id for c in candidates], FEATURES_KEY)
    by_cosine = sorted(candidates, key=lambda c: -c.similarity)
    for position, cand in enumerate(by_cosine):
        data = stored.get(cand.photo_id)
        if data is not None and len(query_features):
            cand.verification = verify(
                query_features,
                LocalFeatures.from_bytes(data),
                try_mirror=position < mirror_top,
            )
            cand.inliers = cand.verification.inliers if cand.verification.model else 0


def score_candidates(
    services: Services,
    query_image: Image.Image,
    candidates: Sequence[Candidate],
    calibration: Calibration,
    threshold: float,
    *,
    background: np.ndarray | None = None,
) -> None:
    """Margin and calibrated probability of every (verified) candidate, in place; those
    still below the threshold get the cosine of their matched region first.

    ``background``: best cosines of catalogue objects that are not candidates (outside a
    status or institution filter): a candidate must stand out from those too.
    """
    _calibrate(candidates, calibration, background)
    below = [c for c in candidates if c.confidence < threshold]
    if rescore_matched_regions(services, query_image, below):
        _calibrate(candidates, calibration, background)


def _calibrate(
    candidates: Sequence[Candidate], calibration: Calibration, background: np.ndarray | None
) -> None:
    if not candidates:
        return
    cosines = np.array([c.similarity for c in candidates])
    margins = object_margins(cosines, background)
    probs = calibration.probability(cosines, np.array([c.inliers for c in candidates]), margins)
    for cand, margin, p in zip(candidates, margins, probs, strict=True):
        cand.margin = float(margin)
        cand.confidence = float(p)


def rescore_matched_regions(
    services: Services, query: Image.Image, candidates: Sequence[Candidate]
) -> bool:
    """Give each verified candidate the cosine of its matched region, if higher; returns
    whether any was rescored.

    In a photo of several objects the whole-photo descriptor mixes them all; once geometry
    has located an object, the descriptor of that region is the fair global evidence. Only
    candidates still below the threshold are worth the extra embedding.
    """
    width, height = query.size
    todo = [
        c
        for c in candidates
        if c.verified
        and c.verification is not None
        and c.verification.query_box is not None
        and c.verification.query_box.area < _WHOLE_FRACTION * width * height
        and c.verification.query_box.area > 0
    ]
    if not todo:
        return False
    emb = services.embedder
    stored = services.catalogue.photo_vectors([c.photo_id for c in todo], emb.name, emb.version)
    crops = [query.crop(tuple(c.verification.query_box)) for c in todo]  # type: ignore[union-attr]
    vectors = emb.embed(crops)
    for cand, vec in zip(todo, vectors, strict=True):
        ref = stored.get(cand.photo_id)
        if ref is not None:
            cand.similarity = max(cand.similarity, float(vec @ ref))
    return True


def assign_regions(candidates: Sequence[Candidate], threshold: float) -> list[Candidate]:
    """The matched objects that each own a region of the query, best first.

    A verified match brings its matched box; overlapping boxes are one region, held by the
    likelier object (the other stays in the ranked list as an alternative).
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
