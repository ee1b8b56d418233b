"""Turning a candidate's evidence (global cosine, verified inliers) into a match probability.

A logistic model over ``[cosine, log1p(inliers)]`` whose coefficients are fitted offline by
``scripts/calibrate.py`` and stored in ``calibration.json`` beside this file, with the
operating threshold chosen there for a target false-match rate and the provenance of both.
Both coefficients are constrained non-negative, so more similarity or more inliers never
lowers the probability (the calibration is monotone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["Calibration", "default_calibration", "features"]

_DEFAULT_FILE = Path(__file__).with_name("calibration.json")


def features(cosine: np.ndarray | float, inliers: np.ndarray | float) -> np.ndarray:
    cos, inl = np.broadcast_arrays(
        np.atleast_1d(np.asarray(cosine, dtype=np.float64)),
        np.atleast_1d(np.asarray(inliers, dtype=np.float64)),
    )
    return np.stack([cos, np.log1p(np.maximum(inl, 0.0))], axis=1)


@dataclass(frozen=True)
class Calibration:
    weights: tuple[float, float]
    bias: float
    #: Probability at or above which a candidate is reported as a match.
    threshold: float
    #: Where the fit came from and what it achieved (free text, for the record).
    provenance: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if min(self.weights) < 0:
            raise ValueError("calibration weights must be non-negative (monotone)")

    def probability(self, cosine: np.ndarray | float, inliers: np.ndarray | float) -> np.ndarray:
        z = features(cosine, inliers) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> str:
        return json.dumps(
            {
                "weights": list(self.weights),
                "bias": self.bias,
                "threshold": self.threshold,
                "provenance": self.provenance,
            },
            indent=2,
        )

    @classmethod
    def from_file(cls, path: Path) -> Calibration:
        raw = json.loads(Path(path).read_text())
        return cls(
            weights=(float(raw["weights"][0]), float(raw["weights"][1])),
            bias=float(raw["bias"]),
            threshold=float(raw["threshold"]),
            provenance=dict(raw.get("provenance", {})),
        )


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    return Calibration.from_file(_DEFAULT_FILE)
