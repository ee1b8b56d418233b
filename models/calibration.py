"""How much a verified match proves, and when a candidate is a match, a lead or nothing.

A match is geometric proof: enough local-feature matches of the catalogue photo fit one
plausible homography into the query (`models.verification`). The *confidence* of a match says
how unlikely that many matching points are by chance. The inlier counts that unrelated pairs
reach (queries of other objects, unrelated photos and bare backgrounds searched against
catalogues of 10 to 1,000+ objects) fall off exponentially, stored as a line in log10:
``log10 P(inliers >= n | unrelated pair) = intercept + slope * n``. A search tries about
``pairs_per_search`` pairs, so the confidence is one minus the chance that any of them shows
``n`` or more by chance: ``1 - min(1, pairs_per_search * P(inliers >= n))``. It depends on the
evidence alone, never on the catalogue's size or on which other objects it holds.

A candidate without geometric proof can still be a *lead* ("similar, not verified"): its
global similarity is high and the geometry does not speak against it. Zero inliers is
evidence against only when both photos have plenty of keypoints; textureless works and small
3-D objects have few, and stay leads.

`scripts/calibrate.py` fits these numbers and writes ``calibration.json`` beside this file,
with its provenance; settings may override the thresholds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["MAX_CONFIDENCE", "Calibration", "default_calibration"]

_DEFAULT_FILE = Path(__file__).with_name("calibration.json")
#: Confidence is capped below 1: no finite evidence is certainty.
MAX_CONFIDENCE = 1.0 - 1e-9


@dataclass(frozen=True)
class Calibration:
    #: ``log10 P(inliers >= n | unrelated pair) = tail_intercept + tail_slope * n``.
    tail_intercept: float
    tail_slope: float
    #: Confidence at or above which a verified candidate is a match.
    threshold: float
    #: Similarity at or above which an unverified, uncontradicted candidate is a lead.
    lead_similarity: float
    #: Keypoints both photos need before zero inliers count against a lead.
    evidence_keypoints: int
    #: Candidate pairs a search verifies, for the chance of a wrong match per search.
    pairs_per_search: int = 30
    #: Where the fit came from and what it achieved (for the record).
    provenance: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tail_slope >= 0:
            raise ValueError("the inlier tail must fall: tail_slope < 0")
        if not 0.0 < self.threshold < MAX_CONFIDENCE:
            raise ValueError("threshold must be a confidence in (0, 1)")

    def chance(self, inliers: np.ndarray | float) -> np.ndarray:
        """Probability that an unrelated pair shows at least ``inliers`` matching points."""
        n = np.maximum(np.atleast_1d(np.asarray(inliers, dtype=np.float64)), 0.0)
        return np.clip(10.0 ** (self.tail_intercept + self.tail_slope * n), 0.0, 1.0)

    def confidence(self, inliers: np.ndarray | float) -> np.ndarray:
        """One minus the chance that a search of an unrelated photo shows ``inliers`` matching
        points on some candidate: monotone in the inliers, 0 without any."""
        return np.clip(1.0 - self.pairs_per_search * self.chance(inliers), 0.0, MAX_CONFIDENCE)

    def inliers_for(self, confidence: float) -> float:
        """The inlier count at which `confidence` reaches ``confidence``."""
        chance = (1.0 - confidence) / self.pairs_per_search
        return float((np.log10(chance) - self.tail_intercept) / self.tail_slope)

    def to_json(self) -> str:
        return json.dumps(
            {
                "tail_intercept": round(self.tail_intercept, 5),
                "tail_slope": round(self.tail_slope, 5),
                "threshold": self.threshold,
                "lead_similarity": round(self.lead_similarity, 4),
                "evidence_keypoints": self.evidence_keypoints,
                "pairs_per_search": self.pairs_per_search,
                "provenance": self.provenance,
            },
            indent=1,
        )

    @classmethod
    def from_file(cls, path: Path) -> Calibration:
        raw = json.loads(Path(path).read_text())
        return cls(
            tail_intercept=float(raw["tail_intercept"]),
            tail_slope=float(raw["tail_slope"]),
            threshold=float(raw["threshold"]),
            lead_similarity=float(raw["lead_similarity"]),
            evidence_keypoints=int(raw["evidence_keypoints"]),
            pairs_per_search=int(raw.get("pairs_per_search", 30)),
            provenance=dict(raw.get("provenance", {})),
        )


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped calibration, read on first use (never at import) and kept."""
    return Calibration.from_file(_DEFAULT_FILE)
