"""Turning a candidate's evidence into a match probability.

Three pieces of evidence per candidate object:

- ``cosine``: global similarity of the CNN descriptors (its best photo, best query view);
- ``inliers``: geometrically consistent local-feature matches (verification);
- ``margin``: how much closer the candidate is than the nearest *other* object of the whole
  catalogue (an object-level ratio test): a textureless monochrome canvas or a 3-D object
  seen from another side can be the right answer without inliers, but only if nothing else
  in the catalogue looks nearly as close.

A gradient-boosted model constrained to be monotone in all three is fitted offline by
``scripts/calibrate.py`` and stored in ``calibration.json`` beside this file as a table over
a regular grid, with the operating threshold chosen there for a target false-match rate and
the provenance of both. At run time the table is interpolated (linearly), so more evidence
never lowers the probability, and nothing but numpy and scipy is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.interpolate import RegularGridInterpolator

__all__ = ["Calibration", "default_calibration", "features", "object_margins"]

_DEFAULT_FILE = Path(__file__).with_name("calibration.json")


def features(
    cosine: np.ndarray | float, inliers: np.ndarray | float, margin: np.ndarray | float
) -> np.ndarray:
    """``(n, 3)`` array of ``[cosine, log1p(inliers), margin]``."""
    cos, inl, gap = np.broadcast_arrays(
        np.atleast_1d(np.asarray(cosine, dtype=np.float64)),
        np.atleast_1d(np.asarray(inliers, dtype=np.float64)),
        np.atleast_1d(np.asarray(margin, dtype=np.float64)),
    )
    return np.stack([cos, np.log1p(np.maximum(inl, 0.0)), gap], axis=1)


def object_margins(cosines: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Each object's cosine minus the best cosine of any other object.

    ``cosines`` are the candidates' (one per object); ``background`` the best cosines of
    further objects of the catalogue that are not candidates (e.g. outside a status filter),
    which every candidate must beat too.
    """
    cos = np.asarray(cosines, dtype=np.float64)
    pool = cos if background is None else np.concatenate([cos, np.asarray(background, float)])
    if len(cos) == 0:
        return cos
    if len(pool) < 2:
        # Nothing else to compare with: no evidence of distinctiveness either way.
        return np.zeros_like(cos)
    order = np.argsort(-pool)
    best, second = pool[order[0]], pool[order[1]]
    # The nearest other object of the best is the second; of every other, the best.
    return cos - np.where(cos >= best, second, best)


@dataclass(frozen=True)
class Calibration:
    #: Grid axes, each increasing: cosine, log1p(inliers), margin.
    axes: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]
    #: Probabilities over the grid, nested lists of shape ``len(axes[0]) x ... x len(axes[2])``.
    table: tuple
    #: Probability at or above which a candidate is reported as a match.
    threshold: float
    #: Where the fit came from and what it achieved (for the record).
    provenance: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        table = np.asarray(self.table, dtype=np.float64)
        if table.shape != tuple(len(a) for a in self.axes):
            raise ValueError("calibration table does not fit its axes")
        for axis in range(table.ndim):
            if np.any(np.diff(table, axis=axis) < -1e-9):
                raise ValueError("calibration table must be monotone in every feature")
        if np.any((table < 0) | (table > 1)):
            raise ValueError("calibration table must hold probabilities")

    @cached_property
    def _interpolate(self) -> RegularGridInterpolator:
        # scipy.interpolate takes a quarter of a second to import: only when first needed.
        from scipy.interpolate import RegularGridInterpolator

        return RegularGridInterpolator(
            tuple(np.asarray(a) for a in self.axes),
            np.asarray(self.table, dtype=np.float64),
            method="linear",
            bounds_error=False,
            fill_value=None,
        )

    def probability(
        self,
        cosine: np.ndarray | float,
        inliers: np.ndarray | float,
        margin: np.ndarray | float,
    ) -> np.ndarray:
        x = features(cosine, inliers, margin)
        for i, axis in enumerate(self.axes):
            # Beyond the grid the edge values hold (clip, rather than extrapolate).
            x[:, i] = np.clip(x[:, i], axis[0], axis[-1])
        return np.clip(self._interpolate(x), 0.0, 1.0)

    def to_json(self) -> str:
        return json.dumps(
            {
                "threshold": self.threshold,
                "provenance": self.provenance,
                "axes": [[round(v, 4) for v in a] for a in self.axes],
                "table": np.round(np.asarray(self.table), 4).tolist(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_file(cls, path: Path) -> Calibration:
        raw = json.loads(Path(path).read_text())
        axes = tuple(tuple(float(v) for v in a) for a in raw["axes"])
        return cls(
            axes=axes,  # type: ignore[arg-type]
            table=raw["table"],
            threshold=float(raw["threshold"]),
            provenance=dict(raw.get("provenance", {})),
        )


@lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped calibration, read on first use (never at import) and kept."""
    return Calibration.from_file(_DEFAULT_FILE)
