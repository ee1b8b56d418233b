"""Synthetic catalogue objects and the kinds of photos investigators take of them."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter


def textured_object(seed: int, size: tuple[int, int] = (320, 400)) -> Image.Image:
    """A 'painting': random coloured shapes and lines over a gradient, distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.zeros((h, w, 3), np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    base[:] = c0 * (1 - t) + c1 * t
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        x1, y1 = x0 + rng.uniform(10, w / 2), y0 + rng.uniform(10, h / 2)
        colour = tuple(int(v) for v in rng.uniform(0, 255, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(2, 8)))
    return img


def photographed(img: Image.Image, seed: int = 0) -> Image.Image:
    """A different photo of the same object: perspective, crop, light, blur, on a wall."""
    rng = np.random.default_rng(seed + 1000)
    w, h = img.size
    # Slight perspective: move the corners by a few percent.
    d = 0.06
    coeffs = _perspective_coeffs(
        [(0, 0), (w, 0), (w, h), (0, h)],
        [
            (rng.uniform(0, d) * w, rng.uniform(0, d) * h),
            (w - rng.uniform(0, d) * w, rng.uniform(0, d) * h),
            (w - rng.uniform(0, d) * w, h - rng.uniform(0, d) * h),
            (rng.uniform(0, d) * w, h - rng.uniform(0, d) * h),
        ],
    )
    warped = img.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        coeffs,
        Image.Resampling.BILINEAR,
        fillcolor=(200, 195, 185),
    )
    wall = Image.new("RGB", (int(w * 1.2), int(h * 1.2)), (200, 195, 185))
    wall.paste(warped, (int(w * 0.1), int(h * 0.1)))
    out = ImageEnhance.Brightness(wall).enhance(float(rng.uniform(0.8, 1.2)))
    out = out.filter(ImageFilter.GaussianBlur(0.8))
    return recompress(out, quality=70)


def tilted(
    img: Image.Image, degrees: float, *, background: tuple[int, int, int] = (190, 185, 175)
) -> Image.Image:
    """The object seen ``degrees`` off its axis (turned about its vertical centre line, as
    a painting photographed from the side), with a pinhole camera at 1.5 widths."""
    w, h = img.size
    f = 1.5 * w
    a = np.radians(degrees)
    corners = []
    for x, y in [(0, 0), (w, 0), (w, h), (0, h)]:
        # Turn the point about the vertical axis through the centre, then project.
        dx, dy = x - w / 2, y - h / 2
        X, Z = dx * np.cos(a), f + dx * np.sin(a)
        corners.append((w / 2 + f * X / Z, h / 2 + f * dy / Z))
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    ox, oy = min(xs) - 20, min(ys) - 20
    out_w, out_h = int(max(xs) - ox + 20), int(max(ys) - oy + 20)
    shifted = [(x - ox, y - oy) for x, y in corners]
    coeffs = _perspective_coeffs([(0, 0), (w, 0), (w, h), (0, h)], shifted)
    return img.transform(
        (out_w, out_h),
        Image.Transform.PERSPECTIVE,
        coeffs,
        Image.Resampling.BICUBIC,
        fillcolor=background,
    )


def recompress(img: Image.Image, quality: int = 75) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _perspective_coeffs(
    src: list[tuple[float, float]], dst: list[tuple[float, float]]
) -> list[float]:
    # PIL wants the transform from output to input coordinates.
    matrix = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        matrix.append([u, v, 1, 0, 0, 0, -x * u, -x * v])
        matrix.append([0, 0, 0, u, v, 1, -y * u, -y * v])
    a = np.array(matrix, dtype=np.float64)
    b = np.array(src, dtype=np.float64).reshape(8)
    return list(np.linalg.solve(a, b))


def keypoint_texture(seed: int, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """An RGB array full of corners, blobs and letters: the structure SIFT keys on."""
    import cv2

    rng = np.random.default_rng(seed)
    width, height = size
    img = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(5, 40))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + r, y + int(rng.integers(5, 40))), color, -1)
        else:
            cv2.circle(img, (x, y), r, color, -1)
    for _ in range(6):
        word = "".join(chr(int(c)) for c in rng.integers(65, 91, 4))
        org = (int(rng.integers(0, width - 100)), int(rng.integers(30, height)))
        cv2.putText(img, word, org, cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    return img
