"""Third stage: decide. Each candidate becomes a match (geometry verified), a lead (similar,
not verified) or nothing; the candidates a ranking; the matches the owners of the query's
regions.

- **Match:** a verified fit (at least `models.verification.MIN_INLIERS` inliers under a
  plausible homography) in a region of the query at least `MIN_REGION_PX` on each side, whose
  confidence (`models.calibration`: one minus the chance of that many inliers between
  unrelated photos) reaches the threshold. Nothing else is ever called a match.
- **Lead:** no such proof, a similarity at or above the lead threshold, and no evidence
  against it: zero inliers count against a lead only where both photos had plenty of
  keypoints to match (a textureless canvas or a small 3-D object has few).
- **Explained away:** a match on a region that another match explains with over three times
  its matching points is a look-alike (a sibling work, a shared print or frame): a lead.
- Matches rank first, then all other candidates, each group most similar first.

Nothing depends on the catalogue's size; only a better-verified object on the same region can
demote a match. Nothing here reads
storage or runs a model: inputs are the candidates, the calibration and settings values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.search.candidates import Candidate
from kernel.enums import Decision, ThresholdOn
from kernel.settings import MatchSettings
from models.calibration import Calibration, default_calibration
from models.regions import Box
from models.verification import Verification

__all__ = [
    "MIN_REGION_PX",
    "NO_EVIDENCE_BELOW",
    "DecisionRules",
    "OwnedRegion",
    "assign_regions",
    "decide",
    "decision_rules",
    "decision_threshold",
    "rank_by_decision",
    "rank_by_similarity",
]

#: Two verified objects whose matched boxes overlap more than this share one region.
_SAME_REGION_IOU = 0.5
#: A matched region narrower or lower than this (query pixels) is no object.
MIN_REGION_PX = 24
#: Fewer inliers than this is no geometric evidence at all (a homography fits any four
#: points; unrelated pairs commonly reach five): with plenty of keypoints on both sides, it
#: is evidence against a lead.
NO_EVIDENCE_BELOW = 6
#: A verified object with fewer than this share of the inliers of another match on the same
#: region is explained by that one (a sibling work, a shared print or frame): a look-alike.
#: Measured: such look-alikes reach 0.09-0.14 of the right object's inliers on
#: museum-paintings' sibling works; one painting catalogued twice gives about 1.
EXPLAINED_BELOW = 1 / 3
#: Share of the weaker match's box inside the stronger's for "the same region".
_SAME_REGION_COVER = 0.5


@dataclass(frozen=True)
class DecisionRules:
    calibration: Calibration
    #: Confidence a match needs.
    threshold: float
    #: Similarity a lead needs.
    lead_similarity: float


def decision_rules(settings: MatchSettings) -> DecisionRules:
    """The shipped calibration with the settings' overrides."""
    calibration = default_calibration()
    return DecisionRules(
        calibration=calibration,
        threshold=settings.confidence_threshold or calibration.threshold,
        lead_similarity=settings.lead_similarity or calibration.lead_similarity,
    )


def decision_threshold(
    settings: MatchSettings, *, verify: bool | None = None
) -> tuple[float, ThresholdOn]:
    """The threshold a search decides matches with, and the quantity it applies to;
    ``verify`` overrides the setting."""
    if settings.verify if verify is None else verify:
        return decision_rules(settings).threshold, ThresholdOn.CONFIDENCE
    return settings.similarity_threshold, ThresholdOn.SIMILARITY


def decide(candidates: Sequence[Candidate], rules: DecisionRules, *, query_keypoints: int) -> None:
    """Confidence and decision of every candidate, in place."""
    if not candidates:
        return
    confidences = rules.calibration.confidence(np.array([c.inliers for c in candidates]))
    for cand, confidence in zip(candidates, confidences, strict=True):
        cand.confidence = float(confidence)
        if cand.verified and _region_ok(cand.verification) and confidence >= rules.threshold:
            cand.decision = Decision.MATCH
        elif cand.similarity >= rules.lead_similarity and not _contradicted(
            cand, query_keypoints, rules.calibration.evidence_keypoints
        ):
            cand.decision = Decision.LEAD
        else:
            cand.decision = Decision.NONE
    _explain_away([c for c in candidates if c.decision is Decision.MATCH])


def _explain_away(matches: Sequence[Candidate]) -> None:
    """Demote to leads the matches whose region a far stronger match explains."""
    strongest = sorted(matches, key=lambda c: -c.inliers)
    for i, weak in enumerate(strongest):
        box = weak.verification.query_box if weak.verification else None
        if box is None:
            continue
        for strong in strongest[:i]:
            other = strong.verification.query_box if strong.verification else None
            if (
                strong.decision is Decision.MATCH
                and other is not None
                and box.share_inside(other) >= _SAME_REGION_COVER
                and weak.inliers < EXPLAINED_BELOW * strong.inliers
            ):
                weak.decision = Decision.LEAD
                break


def _region_ok(verification: Verification | None) -> bool:
    box = verification.query_box if verification is not None else None
    return box is not None and min(box.x1 - box.x0, box.y1 - box.y0) >= MIN_REGION_PX


def _contradicted(cand: Candidate, query_keypoints: int, enough: int) -> bool:
    """Geometry was tried with plenty of keypoints on both sides and found (almost) nothing."""
    return (
        cand.verification is not None
        and cand.inliers < NO_EVIDENCE_BELOW
        and (cand.photo_keypoints or 0) >= enough
        and query_keypoints >= enough
    )


def rank_by_decision(candidates: list[Candidate]) -> None:
    """Matches first, then every other candidate, each group most similar first, in place
    (stable).

    Matches go by similarity too: their confidence saturates, and where two objects verify
    on the same print (one product in two colours, say) the CNN, which sees colour, tells
    them apart better than grey-level keypoints. Without proof, similarity is the best order
    there is: a lead and a "no" keep the CNN's order (each is labelled), since the zero-inlier
    evidence against a lead errs on 3-D objects seen from another side.
    """
    candidates.sort(key=lambda c: (c.decision is not Decision.MATCH, -c.similarity))


def rank_by_similarity(candidates: list[Candidate]) -> None:
    """Most similar first, in place (stable)."""
    candidates.sort(key=lambda c: -c.similarity)


@dataclass(frozen=True)
class OwnedRegion:
    """A region of the query, the object matched there, and other objects that verified
    on the same region (they may be one object catalogued twice)."""

    box: Box
    owner: Candidate
    inliers: int
    also: tuple[str, ...] = ()


def assign_regions(candidates: Sequence[Candidate]) -> list[OwnedRegion]:
    """The regions of the query that matches own, most confident first.

    Each match brings its matched box and those of its further copies; a box overlapping an
    owned one is the same region, held by the likelier object, and the other object is named
    beside it.
    """
    owned: list[OwnedRegion] = []
    matches = [c for c in candidates if c.decision is Decision.MATCH]
    for cand in sorted(matches, key=lambda c: (-c.confidence, -c.inliers)):
        assert cand.verification is not None
        for fit in (cand.verification, *cand.copies):
            box = fit.query_box
            if box is None or box.area <= 0:
                continue
            for i, region in enumerate(owned):
                if box.iou(region.box) >= _SAME_REGION_IOU:
                    if cand.object_id != region.owner.object_id:
                        owned[i] = OwnedRegion(
                            region.box, region.owner, region.inliers, (*region.also, cand.object_id)
                        )
                    break
            else:
                if cand.region is None:
                    cand.region = box
                owned.append(OwnedRegion(box, cand, fit.inliers))
    return owned
