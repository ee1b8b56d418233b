"""A picture a person can check: why the system says two photos show the same object.

The query and the catalogue photo sit side by side at one height, inlier correspondences are
joined by lines, the catalogue photo's outline is drawn where it lands in the query, and a
caption names both photos and the object and explains the lines and the box (a legend).
Investigators attach this to case files, so it must not depend on anything but the two photos,
their names and the `Verification`.

The captions are drawn with Pillow and the DejaVu font the install puts on the machine
(scripts/install-system-deps.sh: fonts-dejavu-core): OpenCV's Hershey fonts cannot draw
Cyrillic or diacritics, and the names are Serbian, Norwegian, Italian, German and French.
The words are injectable (``translate``) so a page in another language gets its own picture.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kernel.errors import InvalidInput
from models.verification import Verification

__all__ = ["CAPTION_PX", "CAPTION_WORDS", "caption_font", "draw_evidence", "encode_png"]

# More lines than this turn into a solid smear that hides the photos.
_MAX_LINES = 80
#: Height of the caption band under the photos: three lines (names, object, legend).
CAPTION_PX = 78
_LINE_PX = 24
_FONT_PX = 15
_MIN_FONT_PX = 8
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
    object_label: str = "",
    translate: Callable[[str], str] | None = None,
) -> np.ndarray:
    """RGB image: query left, catalogue photo right, matches and the matched outline drawn.

    ``labels`` name the two photos (the query's file name or search id; the catalogue
    photo's object id and view), ``object_label`` the object (id and title). ``translate``
    turns each English word of the caption into the reader's language (a gettext function);
    the words it is asked for are listed in `CAPTION_WORDS`.

    ``candidate_size`` is the (width, height) the candidate's points are measured in when it
    differs from ``candidate_rgb`` (features stored from a larger decode of the photo).
    """
    if max_height < 2 * CAPTION_PX:
        raise InvalidInput(f"max_height must be >= {2 * CAPTION_PX}")
    if len(labels) != 2:
        raise InvalidInput("labels must be (query label, catalogue label)")
    query = _check_rgb(query_rgb, "query_rgb")
    candidate = _check_rgb(candidate_rgb, "candidate_rgb")
    height = min(max_height - CAPTION_PX, max(query.shape[0], candidate.shape[0]))
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
    canvas = np.full((height + CAPTION_PX, offset + right.shape[1], 3), _BACKGROUND, np.uint8)
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

    _draw_captions(
        canvas,
        top=height,
        words=_Words(translate or _identity),
        names=(labels[0], labels[1], object_label),
        verification=verification,
    )
    return canvas


#: The English words of the caption, each passed through ``translate``; ``{...}`` fields are
#: filled in after translation.
CAPTION_WORDS = (
    "query photo",
    "catalogue photo",
    "object",
    "matching points",
    "matched region",
    "{inliers} of {matches} candidate matches",
    "no model",
    "mirrored",
)


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class _Words:
    translate: Callable[[str], str]

    def __call__(self, text: str, **fields: object) -> str:
        try:
            return self.translate(text).format(**fields)
        except (KeyError, IndexError, ValueError):
            # A translation that mangled a {field} must not cost the case file its picture.
            return text.format(**fields)


_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
)


@functools.cache
def _font_file() -> str | None:
    """DejaVu Sans where Debian puts it, else where fontconfig says it is, else None."""
    for path in _FONT_FILES:
        if Path(path).is_file():
            return path
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(
            [fc_match, "-f", "%{file}", "DejaVu Sans"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return found if found and Path(found).is_file() else None


@functools.cache
def caption_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The caption font at ``size`` px: DejaVu Sans (Cyrillic and diacritics), else Pillow's
    own font so that a machine without fonts still gets a picture."""
    path = _font_file()
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def _fitted(
    draw: ImageDraw.ImageDraw, text: str, width: int
) -> tuple[str, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """``text`` and a font that fits it in ``width`` px: smaller, then cut with an ellipsis."""
    size = _FONT_PX
    while True:
        font = caption_font(size)
        if draw.textlength(text, font=font) <= width:
            return text, font
        if size <= _MIN_FONT_PX:
            break
        size -= 1
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…", font


def _draw_captions(
    canvas: np.ndarray,
    *,
    top: int,
    words: _Words,
    names: tuple[str, str, str],
    verification: Verification,
) -> None:
    """Three lines under the photos: what each photo is, which object, what the marks mean."""
    band = Image.fromarray(np.ascontiguousarray(canvas[top:]))
    draw = ImageDraw.Draw(band)
    width = band.width - 16
    query, catalogue, obj = names
    lines = [f"◀ {words('query photo')}: {query}    ▶ {words('catalogue photo')}: {catalogue}"]
    if obj:
        lines.append(f"{words('object')}: {obj}")
    y = 4
    for line in lines:
        text, font = _fitted(draw, line, width)
        draw.text((8, y), text, fill=(0, 0, 0), font=font)
        y += _LINE_PX
    y = CAPTION_PX - _LINE_PX + 2
    model = words(verification.model) if verification.model else words("no model")
    if verification.mirrored:
        model += ", " + words("mirrored")
    # The legend: a sample of each mark, then what it means.
    x = 8
    colors = _line_colors(3)
    for i, color in enumerate(colors):
        draw.line([(x, y + 10 - 3 * i), (x + 26, y + 4 + 3 * i)], fill=color, width=2)
    draw.ellipse([x - 2, y + 8, x + 2, y + 12], fill=colors[0])
    x += 34
    legend = (
        words("matching points")
        + " ("
        + words(
            "{inliers} of {matches} candidate matches",
            inliers=verification.inliers,
            matches=verification.matches_after_ratio,
        )
        + f", {model})"
    )
    region = words("matched region")
    room = width - x - 60 - int(draw.textlength(region, font=caption_font(_FONT_PX)))
    text, font = _fitted(draw, legend, max(room, 40))
    draw.text((x, y), text, fill=(0, 0, 0), font=font)
    x += int(draw.textlength(text, font=font)) + 18
    draw.rectangle([x, y + 2, x + 24, y + 16], outline=_QUAD_COLOR, width=3)
    x += 32
    text, font = _fitted(draw, region, max(band.width - 8 - x, 20))
    draw.text((x, y), text, fill=(0, 0, 0), font=font)
    canvas[top:] = np.asarray(band)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB (or gray) uint8 image."""
    image = _check_rgb(rgb, "rgb")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise InvalidInput("could not encode the image as PNG")
    return buf.tobytes()
