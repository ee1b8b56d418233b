"""A picture a person can check: why the system says two photos show the same object.

The query and the catalogue photo sit side by side at one height, inlier correspondences are
joined by lines, the catalogue photo's outline is drawn where it lands in the query, and a
caption states the inlier count. Investigators attach this to case files, so it must not
depend on anything but the two photos and the `Verification`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from kernel.errors import InvalidInput
from models.verification import Verification

__all__ = ["draw_evidence", "encode_png"]

# More lines than this turn into a solid smear that hides the photos.
_MAX_LINES = 80
_CAPTION_PX = 44
_GAP_PX = 8
_BACKGROUND = (255, 255, 255)
_QUAD_COLOR = (0, 200, 0)


def _check_rgb(image: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidInput(f"{name} must be a uint8 numpy array")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or min(image.shape[:2]) < 1:
        raise InvalidInput(f"{name} must be HxW, HxWx3 or HxWx4, got shape {image.shape}")
    return image[:, :, :3]


def _fit(image: np.ndarray, *, height: int, width: int) -> tuple[np.ndarray, float]:
    """``image`` scaled to ``height``, or less where that would be wider than ``width``."""
    factor = min(height / image.shape[0], width / image.shape[1])
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp), factor


def _line_colors(n: int) -> list[tuple[int, int, int]]:
    # Distinct hues so crossing lines can still be followed by eye.
    hues = np.linspace(0, 179, max(n, 1), endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 230), np.full_like(hues, 255)], axis=1)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    return [(int(r), int(g), int(b)) for r, g, b in rgb]


def draw_evidence(
    query_rgb: np.ndarray,
    candidate_rgb: np.ndarray,
    verification: Verification,
    *,
    max_height: int = 720,
    labels: Sequence[str] = ("query", "catalogue"),
    candidate_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """RGB image: query left, catalogue photo right, matches and the matched outline drawn.

    ``candidate_size`` is the (width, height) the candidate's points are measured in when it
    differs from ``candidate_rgb`` (features stored from a larger decode of the photo).
    """
    if max_height < 32:
        raise InvalidInput("max_height must be >= 32")
    if len(labels) != 2:
        raise InvalidInput("labels must be (query label, catalogue label)")
    query = _check_rgb(query_rgb, "query_rgb")
    candidate = _check_rgb(candidate_rgb, "candidate_rgb")
    height = min(max_height - _CAPTION_PX, max(query.shape[0], candidate.shape[0]))
    # Each photo gets at most half of a picture four times as wide as high: a frieze beside
    # a scroll at one shared height would be hundreds of thousands of pixels wide.
    half = 2 * max_height
    left, fq = _fit(query, height=height, width=half)
    right, fc = _fit(candidate, height=height, width=half)
    if candidate_size is not None and candidate_size[0] > 0:
        # The candidate's points are in the frame its features were computed in.
        fc *= candidate.shape[1] / candidate_size[0]
    height = max(left.shape[0], right.shape[0])
    offset = left.shape[1] + _GAP_PX
    canvas = np.full((height + _CAPTION_PX, offset + right.shape[1], 3), _BACKGROUND, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], offset:] = right

    if verification.query_quad is not None:
        quad = np.round(verification.query_quad * fq).astype(np.int32)
        cv2.polylines(canvas, [quad.reshape(-1, 1, 2)], True, _QUAD_COLOR, 3, cv2.LINE_AA)

    n = len(verification.query_pts)
    if n:
        # An even spread over all inliers is more honest than the first N.
        pick = np.linspace(0, n - 1, min(n, _MAX_LINES)).round().astype(int)
        q = np.round(verification.query_pts[pick] * fq).astype(int)
        c = np.round(verification.candidate_pts[pick] * fc).astype(int)
        for (qx, qy), (cx, cy), color in zip(q, c, _line_colors(len(pick)), strict=True):
            cv2.line(canvas, (qx, qy), (offset + cx, cy), color, 1, cv2.LINE_AA)
            cv2.circle(canvas, (qx, qy), 3, color, -1, cv2.LINE_AA)
            cv2.circle(canvas, (offset + cx, cy), 3, color, -1, cv2.LINE_AA)

    model = verification.model or "no model"
    mirrored = ", mirrored" if verification.mirrored else ""
    caption = (
        f"{labels[0]}  <->  {labels[1]}   |   {verification.inliers} inliers "
        f"of {verification.matches_after_ratio} matches ({model}{mirrored})"
    )
    scale = 0.6
    (text_w, _), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if text_w > canvas.shape[1] - 16:
        scale *= (canvas.shape[1] - 16) / text_w
    cv2.putText(
        canvas,
        caption,
        (8, height + _CAPTION_PX // 2 + 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return canvas


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB (or gray) uint8 image."""
    image = _check_rgb(rgb, "rgb")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise InvalidInput("could not encode the image as PNG")
    return buf.tobytes()
