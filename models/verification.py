"""Geometric verification: do two photos show the same flat object, and where?

Descriptors are matched with a ratio test, made one-to-one, and a homography (paintings,
prints and other flat things seen in perspective) is fitted with MAGSAC++. When that fails or
is implausible, a similarity transform is tried, which survives far fewer correct matches. The
count of inliers is the evidence: unrelated photos rarely give more than a handful.

A mirrored photo (a reversed print, a selfie camera, a flipped scan) is tried only when the
direct attempt gives no clear match, by mirroring the query's descriptors rather than
extracting features again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from kernel.errors import InvalidInput
from models.local_features import LocalFeatures, matching_descriptors, mirror_descriptors
from models.regions import Box

__all__ = ["DEFAULT_RATIO", "MIN_INLIERS", "Verification", "fit_instances", "fit_pairs", "verify"]

DEFAULT_RATIO = 0.8
#: Inliers at which a pair counts as the same object. Measured on museum-paintings (1,120
#: random wrong pairs): wrong pairs reach at most 6 inliers, apart from one mirrored sibling
#: painting by the same artist; 12 leaves a 2x margin and keeps TPR ~0.93.
MIN_INLIERS = 12
# Reprojection tolerance in working pixels of the query; scaled to original pixels per query.
_REPROJ_PX = 3.0
_MIN_MATCHES = 6
# A fitted transform may shrink or grow the catalogue photo by at most this (linear) factor.
_MAX_SCALE_CHANGE = 40.0
# Opposite sides of the projected catalogue photo may differ by at most this factor.
_MAX_SIDE_RATIO = 4.0
_USAC_ITERS = 2000
# Mirror-symmetric details (circles, letters like A, H, O) match a mirrored photo weakly even
# without mirroring, so anything short of a clear match also gets the mirrored attempt.
_MIRROR_RETRY_BELOW = 2 * MIN_INLIERS


@dataclass(frozen=True, eq=False)
class Verification:
    inliers: int = 0
    matches_after_ratio: int = 0
    model: str | None = None
    #: 3x3 map from candidate pixels to query pixels (original coordinates).
    transform: np.ndarray | None = None
    query_pts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    candidate_pts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    #: The candidate's corners projected into the query (4x2, not clipped).
    query_quad: np.ndarray | None = None
    #: Bounding box of `query_quad` clipped to the query: the matched region.
    query_box: Box | None = None
    mirrored: bool = False
    #: The inlier matches as (query keypoint index, candidate keypoint index) rows.
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    @property
    def inlier_ratio(self) -> float:
        return self.inliers / self.matches_after_ratio if self.matches_after_ratio else 0.0

    @property
    def is_match(self) -> bool:
        return self.model is not None and self.inliers >= MIN_INLIERS


def _ratio_matches(
    query_desc: np.ndarray, cand_desc: np.ndarray, *, ratio: float, binary: bool
) -> np.ndarray:
    """(query index, candidate index) pairs passing the ratio test, one per candidate point."""
    if len(query_desc) < 2 or len(cand_desc) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    if binary:
        matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        pairs = matcher.knnMatch(query_desc, cand_desc, k=2)
        rows = [(m[0].queryIdx, m[0].trainIdx, m[0].distance, m[1].distance) for m in pairs]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
        qi, ci = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
        d1, d2 = arr[:, 2], arr[:, 3]
    else:
        # Unit vectors: one BLAS product gives all distances, much faster than FLANN at this size.
        sims = query_desc @ cand_desc.T
        qi = np.arange(len(query_desc))
        ci = np.argmax(sims, axis=1)
        s1 = sims[qi, ci].copy()
        sims[qi, ci] = -np.inf
        s2 = sims.max(axis=1)
        d1 = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * s1))
        d2 = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * s2))
    good = d1 < ratio * d2
    qi, ci, d1 = qi[good], ci[good], d1[good]
    # Several query points claiming one catalogue point are repeated texture, not evidence.
    order = np.lexsort((d1, ci))
    ci_sorted = ci[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ci_sorted[1:] != ci_sorted[:-1]
    keep = order[first]
    return np.stack([qi[keep], ci[keep]], axis=1)


def _corners(width: int, height: int) -> np.ndarray:
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)


def _project(transform: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    homog = np.hstack([points, np.ones((len(points), 1))]) @ transform.T
    w = homog[:, 2]
    # A corner behind the camera (w <= 0) means the quad folds through infinity.
    if np.any(w <= 1e-9) or not np.all(np.isfinite(homog)):
        return None
    return homog[:, :2] / w[:, None]


def _plausible_quad(quad: np.ndarray, cand_area: float) -> bool:
    edges = np.roll(quad, -1, axis=0) - quad
    nxt = np.roll(edges, -1, axis=0)
    cross = edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]
    # Positive in image coordinates (y down) means the corner order kept its orientation;
    # mirrored matches are handled before this, so a reflection here is degenerate.
    if not np.all(cross > 0):
        return False
    x, y = quad[:, 0], quad[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    scale = np.sqrt(area / max(cand_area, 1.0))
    if not 1.0 / _MAX_SCALE_CHANGE <= scale <= _MAX_SCALE_CHANGE:
        return False
    sides = np.linalg.norm(edges, axis=1)
    return bool(
        sides[0] <= _MAX_SIDE_RATIO * sides[2]
        and sides[2] <= _MAX_SIDE_RATIO * sides[0]
        and sides[1] <= _MAX_SIDE_RATIO * sides[3]
        and sides[3] <= _MAX_SIDE_RATIO * sides[1]
    )


def _fit(
    cand_pts: np.ndarray, query_pts: np.ndarray, *, threshold: float, cand_size: tuple[int, int]
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray] | None:
    """(model, 3x3 transform, inlier mask, projected corners) or None when nothing plausible."""
    corners = _corners(*cand_size)
    cand_area = float(cand_size[0] * cand_size[1])
    attempts: list[tuple[str, np.ndarray | None, np.ndarray | None]] = []
    if len(cand_pts) >= 4:
        h, h_mask = cv2.findHomography(
            cand_pts,
            query_pts,
            method=cv2.USAC_MAGSAC,
            ransacReprojThreshold=threshold,
            maxIters=_USAC_ITERS,
            confidence=0.999,
        )
        attempts.append(("homography", h, h_mask))
    a, a_mask = cv2.estimateAffinePartial2D(
        cand_pts,
        query_pts,
        method=cv2.RANSAC,
        ransacReprojThreshold=threshold,
        maxIters=_USAC_ITERS,
        confidence=0.999,
    )
    attempts.append(("affine", None if a is None else np.vstack([a, [0.0, 0.0, 1.0]]), a_mask))
    for model, transform, mask in attempts:
        if transform is None or mask is None or not np.all(np.isfinite(transform)):
            continue
        inlier_mask = mask.ravel().astype(bool)
        if inlier_mask.sum() < 4:
            continue
        quad = _project(transform, corners)
        if quad is None or not _plausible_quad(quad, cand_area):
            continue
        return model, transform, inlier_mask, quad
    return None


def _attempt(
    query: LocalFeatures,
    candidate: LocalFeatures,
    query_desc: np.ndarray,
    cand_desc: np.ndarray,
    *,
    ratio: float,
    mirrored: bool,
) -> Verification:
    pairs = _ratio_matches(query_desc, cand_desc, ratio=ratio, binary=query.method == "orb")
    return fit_pairs(query, candidate, pairs, mirrored=mirrored)


def fit_pairs(
    query: LocalFeatures,
    candidate: LocalFeatures,
    pairs: np.ndarray,
    *,
    mirrored: bool = False,
) -> Verification:
    """Fit the geometry of putative matches ``pairs`` ((query index, candidate index) rows,
    from a ratio test or from a descriptor index's votes) and keep its inliers."""
    if len(pairs) < _MIN_MATCHES:
        return Verification(matches_after_ratio=len(pairs), mirrored=mirrored)
    query_pts = query.keypoints[pairs[:, 0]].astype(np.float64)
    cand_pts = candidate.keypoints[pairs[:, 1]].astype(np.float64)
    # Fitting against the mirrored catalogue photo keeps every model orientation-preserving,
    # so the similarity fallback (which cannot reflect) and the quad checks work unchanged.
    flip = np.eye(3)
    if mirrored:
        flip = np.array([[-1.0, 0.0, candidate.width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    fit_pts = cand_pts.copy()
    if mirrored:
        fit_pts[:, 0] = candidate.width - fit_pts[:, 0]
    fitted = _fit(
        fit_pts,
        query_pts,
        threshold=_REPROJ_PX * query.scale,
        cand_size=(candidate.width, candidate.height),
    )
    if fitted is None:
        return Verification(matches_after_ratio=len(pairs), mirrored=mirrored)
    model, transform, inlier_mask, quad = fitted
    transform = transform @ flip
    if mirrored:
        # Keep corner k of `query_quad` the image of candidate corner k after the flip.
        quad = quad[[1, 0, 3, 2]]
    x0, y0 = np.floor(quad.min(axis=0))
    x1, y1 = np.ceil(quad.max(axis=0))
    box = Box(
        x0=int(np.clip(x0, 0, query.width)),
        y0=int(np.clip(y0, 0, query.height)),
        x1=int(np.clip(x1, 0, query.width)),
        y1=int(np.clip(y1, 0, query.height)),
    )
    return Verification(
        inliers=int(inlier_mask.sum()),
        matches_after_ratio=len(pairs),
        model=model,
        transform=transform / transform[2, 2],
        query_pts=query_pts[inlier_mask].astype(np.float32),
        candidate_pts=cand_pts[inlier_mask].astype(np.float32),
        query_quad=quad,
        query_box=box if box.area > 0 else None,
        mirrored=mirrored,
        pairs=pairs[inlier_mask],
    )


def fit_instances(
    query: LocalFeatures,
    candidate: LocalFeatures,
    pairs: np.ndarray,
    *,
    max_instances: int = 2,
) -> list[Verification]:
    """Every copy of ``candidate`` in ``query``: fit, then fit again on the putative matches
    the verified copies do not explain (a second copy of a print, a pair of icons).

    Returns the verified copies (`Verification.is_match`), best first, or the one best
    unverified attempt when there is none (its inliers are still evidence).
    """
    found: list[Verification] = []
    remaining = pairs
    best = Verification(matches_after_ratio=len(pairs))
    for _ in range(max_instances):
        result = fit_pairs(query, candidate, remaining)
        if result.inliers > best.inliers and not found:
            best = result
        if not result.is_match:
            break
        found.append(result)
        used = {int(q) for q in result.pairs[:, 0]}
        remaining = np.array(
            [p for p in remaining if int(p[0]) not in used], dtype=np.int64
        ).reshape(-1, 2)
        if len(remaining) < MIN_INLIERS:
            break
    return found or [best]


def verify(
    query: LocalFeatures,
    candidate: LocalFeatures,
    *,
    ratio: float = DEFAULT_RATIO,
    try_mirror: bool = True,
) -> Verification:
    """Match `candidate` (a catalogue photo) into `query`; more inliers is stronger evidence."""
    if query.method != candidate.method:
        raise InvalidInput(
            f"cannot match {query.method} features against {candidate.method} features"
        )
    if not 0.0 < ratio <= 1.0:
        raise InvalidInput(f"ratio must be in (0, 1], got {ratio}")
    query_desc = matching_descriptors(query)
    cand_desc = matching_descriptors(candidate)
    result = _attempt(query, candidate, query_desc, cand_desc, ratio=ratio, mirrored=False)
    # ORB's sampling pattern has no mirror symmetry to exploit; SIFT's grid does.
    if result.inliers >= _MIRROR_RETRY_BELOW or not try_mirror or query.method == "orb":
        return result
    mirrored = _attempt(
        query, candidate, mirror_descriptors(query_desc), cand_desc, ratio=ratio, mirrored=True
    )
    return mirrored if mirrored.inliers > result.inliers else result
