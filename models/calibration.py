"""Turning a candidate's evidence (global cosine, verified inliers) into a match probability.

A gradient-boosted model with monotone constraints is fitted offline by
``scripts/calibrate.py`` on ``[cosine, log1p(inliers)]`` and stored in ``calibration.json``
beside this file as a table over a regular grid of both features, with the operating
threshold chosen there for a target false-match rate and the provenance of both. At run time
the table is interpolated (bilinear), so the probability never decreases when the cosine or
the inlier count grows (the calibration is monotone) and nothing but numpy and scipy is
needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from scipy.interpolate import RegularGridInterpolator

__all__ = ["Calibration", "default_calibration", "features"]

_DEFAULT_FILE = Path(__file__).with_name("calibration.json")


def features(cosine: np.ndarray | float, inliers: np.ndarray | float) -> np.ndarray:
    """``(n, 2)`` array of ``[cosine, log1p(inliers)]``."""
    cos, inl = np.broadcast_arrays(
        np.atleast_1d(np.asarray(cosine, dtype=np.float64)),
        np.atleast_1d(np.asarray(inliers, dtype=np.float64)),
    )
    return np.stack([cos, np.log1p(np.maximum(inl, 0.0))], axis=1)


@dataclass(frozen=True)
class Calibration:
    #: Grid axes: cosine values and log1p(inliers) values, both increasing.
    cosine_axis: tuple[float, ...]
    inliers_axis: tuple[float, ...]
    #: ``len(cosine_axis) x len(inliers_axis)`` probabilities.
    table: tuple[tuple[float, ...], ...]
    #: Probability at or above which a candidate is reported as a match.
    threshold: float
    #: Where the fit came from and what it achieved (for the record).
    provenance: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        table = np.asarray(self.table)
        if table.shape != (len(self.cosine_axis), len(self.inliers_axis)):
            raise ValueError("calibration table does not fit its axes")
        if np.any(np.diff(table, axis=0) < -1e-9) or np.any(np.diff(table, axis=1) < -1e-9):
            raise ValueError("calibration table must be monotone in both features")
        if np.any((table < 0) | (table > 1)):
            raise ValueError("calibration table must hold probabilities")

    @cached_property
    def _interpolate(self) -> RegularGridInterpolator:
        return RegularGridInterpolator(
            (np.asarray(self.cosine_axis), np.asarray(self.inliers_axis)),
            np.asarray(self.table),
            method="linear",
            bounds_error=False,
            fill_value=None,
        )

    def probability(self, cosine: np.ndarray | float, inliers: np.ndarray | float) -> np.ndarray:
        x = features(cosine, inliers)
        # Beyond the grid the edge values hold (clip, rather than extrapolate).
        x[:, 0] = np.clip(x[:, 0], self.cosine_axis[0], self.cosine_axis[-1])
        x[:, 1] = np.clip(x[:, 1], self.inliers_axis[0], self.inliers_axis[-1])
        return np.clip(self._interpolate(x), 0.0, 1.0)

    def to_json(self) -> str:
        return json.dumps(
            {
                "threshold": self.threshold,
                "provenance": self.provenance,
                "cosine_axis": [round(v, 4) for v in self.cosine_axis],
                "inliers_axis": [round(v, 4) for v in self.inliers_axis],
                "table": [[round(v, 5) for v in row] for row in self.table],
            },
            indent=1,
        )

    @classmethod
    def from_file(cls, path: Path) -> Calibration:
        raw = json.loads(Path(path).read_text())
        return cls(
            cosine_axis=tuple(float(v) for v in raw["cosine_axis"]),
            inliers_axis=tuple(float(v) for v in raw["inliers_axis"]),
            table=tuple(tuple(float(v) for v in row) for row in raw["table"]),
            threshold=float(raw["threshold"]),
            provenance=dict(raw.get("provenance", {})),
        )


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    return Calibration.from_file(_DEFAULT_FILE)
