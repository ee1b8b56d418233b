"""Class-agnostic proposals of object-like regions in a photo of several items.

A seizure photo may show several paintings or objects on a table or wall. The caller embeds
each proposed crop with the CNN and searches the catalogue per crop; after an object has been
verified, `mask_out` drops its keypoints so the next object in the same photo can be verified
without the first one's matches getting in the way.

Two cues, pooled: (1) textured blobs, since art and artefacts carry far more edges than a
plain wall or tablecloth, so edge density closed morphologically outlines them; (2) closed,
nearly rectangular edge loops, since paintings, prints and frames are flat rectangles seen in
perspective, which still stand out on a cluttered background where every patch has edges.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from kernel.errors import InvalidInput
from models.local_features import LocalFeatures

__all__ = ["Box", "mask_out", "propose_regions"]

# Proposals are computed on a small copy: the shapes we want are large and this keeps it ~10 ms.
_WORK_SIDE = 512
# Thinner photos are not split into regions.
_MIN_SIDE = 16
_MIN_AREA_FRACTION = 0.01
_MAX_AREA_FRACTION = 0.9
_MAX_ASPECT = 6.0
# Proposals overlapping an already kept, better one more than this are the same object.
_NMS_IOU = 0.6
# Contour area over its minimum-area rectangle: a perspective rectangle scores close to 1.
_MIN_RECTANGULARITY = 0.8
# Canny thresholds for the rectangle cue: faint frames need low ones, busy scenes high ones.
_QUAD_CANNY = ((30, 90), (60, 180), (100, 250))


class Box(NamedTuple):
    """Axis-aligned box in pixels: x0, y0 inclusive, x1, y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    def _intersection(self, other: Box) -> int:
        ix = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        return ix * iy

    def iou(self, other: Box) -> float:
        inter = self._intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def share_inside(self, other: Box) -> float:
        """The share of this box's area that lies inside ``other`` (0 for an empty box)."""
        return self._intersection(other) / self.area if self.area > 0 else 0.0

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask of the Nx2 (x, y) points that fall inside the box."""
        x, y = points[:, 0], points[:, 1]
        return (x >= self.x0) & (x < self.x1) & (y >= self.y0) & (y < self.y1)


def _edge_mask(gray: np.ndarray) -> np.ndarray:
    # A light blur keeps sensor noise and JPEG grain from counting as texture.
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    median = float(np.median(blurred))
    edges = cv2.Canny(blurred, max(10.0, 0.66 * median), max(30.0, 1.33 * median))
    # Edge density, not edges: a painting is a dense field of short edges, a wall is not.
    density = cv2.blur(edges.astype(np.float32) / 255.0, (15, 15))
    dense = (density > 0.08).astype(np.uint8) * 255
    side = max(3, round(max(gray.shape) / 60))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    closed = cv2.morphologyEx(dense, cv2.MORPH_CLOSE, kernel, iterations=2)
    return cv2.morphologyEx(closed, cv2.MORPH_OPEN, kernel)


def _rectangles(gray: np.ndarray) -> list[tuple[float, tuple[int, int, int, int]]]:
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    area_total = gray.shape[0] * gray.shape[1]
    found = []
    for low, high in _QUAD_CANNY:
        edges = cv2.dilate(cv2.Canny(blurred, low, high), np.ones((3, 3), np.uint8))
        # RETR_LIST also yields the inner side of a frame's loop, i.e. the picture itself.
        contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            area = cv2.contourArea(contour)
            if not _MIN_AREA_FRACTION * area_total <= area <= _MAX_AREA_FRACTION * area_total:
                continue
            hull = cv2.convexHull(contour)
            (_, _), (rw, rh), _ = cv2.minAreaRect(hull)
            if rw * rh <= 0 or area / (rw * rh) < _MIN_RECTANGULARITY:
                continue
            x, y, w, h = cv2.boundingRect(hull)
            if max(w, h) / max(1, min(w, h)) > _MAX_ASPECT:
                continue
            # Rectangles are the stronger cue: rank them ahead of blobs of the same size.
            found.append((2.0 * area / area_total, (x, y, w, h)))
    return found


def _blobs(gray: np.ndarray) -> list[tuple[float, tuple[int, int, int, int]]]:
    mask = _edge_mask(gray)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    area_total = gray.shape[0] * gray.shape[1]
    found = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        fraction = (w * h) / area_total
        if not _MIN_AREA_FRACTION <= fraction <= _MAX_AREA_FRACTION:
            continue
        if max(w, h) / max(1, min(w, h)) > _MAX_ASPECT:
            continue
        # Solid blobs beat thin, sprawling edge chains of the same bounding box.
        solidity = cv2.contourArea(contour) / max(1.0, float(w * h))
        found.append((fraction * (0.5 + solidity), (x, y, w, h)))
    return found


def propose_regions(
    image_rgb: np.ndarray,
    *,
    max_regions: int = 8,
    include_whole: bool = True,
) -> list[Box]:
    """Boxes (original pixels) around object-like regions, largest first, whole image last."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8:
        raise InvalidInput("image must be a uint8 numpy array")
    if image_rgb.ndim not in (2, 3) or min(image_rgb.shape[:2]) < 1:
        raise InvalidInput(f"image must be HxW[xC], got shape {image_rgb.shape}")
    if max_regions < 1:
        raise InvalidInput("max_regions must be >= 1")
    if min(image_rgb.shape[:2]) < _MIN_SIDE:
        # Too thin to hold a separate object (a 3-pixel strip): the photo is its one region.
        height, width = image_rgb.shape[:2]
        return [Box(0, 0, width, height)] if include_whole else []
    gray = image_rgb if image_rgb.ndim == 2 else cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    factor = min(1.0, _WORK_SIDE / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)

    scored: list[tuple[float, Box]] = []
    for score, (x, y, w, h) in _rectangles(gray) + _blobs(gray):
        box = Box(
            x0=max(0, int(np.floor(x / factor))),
            y0=max(0, int(np.floor(y / factor))),
            x1=min(width, int(np.ceil((x + w) / factor))),
            y1=min(height, int(np.ceil((y + h) / factor))),
        )
        scored.append((score, box))

    scored.sort(key=lambda item: item[0], reverse=True)
    kept: list[Box] = []
    for _, box in scored:
        if all(box.iou(other) < _NMS_IOU for other in kept):
            kept.append(box)
    whole = Box(0, 0, width, height)
    kept = [box for box in kept if box.iou(whole) < _NMS_IOU]
    if include_whole:
        kept = kept[: max_regions - 1] + [whole]
    return kept[:max_regions]


def mask_out(
    features: LocalFeatures, box: Box | tuple[float, float, float, float]
) -> LocalFeatures:
    """The features minus those whose keypoints fall inside `box` (original pixels)."""
    if len(box) != 4:
        raise InvalidInput("box must be (x0, y0, x1, y1)")
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 < x0 or y1 < y0:
        raise InvalidInput(f"box has negative size: {tuple(box)}")
    points = features.keypoints
    inside = (points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0) & (points[:, 1] < y1)
    return features.subset(~inside)
