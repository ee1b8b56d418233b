"""Decoding untrusted image bytes into clean RGB pictures, with one-line errors.

Phone photos arrive EXIF-rotated, as HEIC, CMYK, 16-bit, palette or with alpha; scans arrive as
huge TIFFs; uploads arrive truncated or as something else entirely. Everything downstream sees
an upright 8-bit RGB `PIL.Image` or an `InvalidImage` naming the problem.

Memory is bounded three ways, because a small file can describe a huge raster (a 175 KB PNG
of 9000x9999 16-bit pixels): the header's size and mode are checked against a pixel limit and
a byte budget before any pixel is decoded; JPEGs are decoded already reduced (draft mode) and
every other format is reduced right after decoding to a working size of `WORKING_SIDE` pixels
on the longest side (nothing downstream looks at more than 1,000); and only
`configure_decoding`'s ``max_concurrent`` decodes run at once in a process.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from kernel.errors import InvalidImage

__all__ = [
    "DEFAULT_MAX_CONCURRENT_DECODES",
    "DEFAULT_MAX_DECODE_BYTES",
    "WORKING_SIDE",
    "DecodedImage",
    "configure_decoding",
    "decode_cost",
    "decode_image",
    "make_thumbnail",
    "sha256_hex",
]

#: Longest side of a decoded picture; larger photos are reduced by a whole factor while
#: decoding. The CNN sees 320 px, local features at most 1,000 px, evidence 720 px high.
WORKING_SIDE = 4096
#: Bytes one decode may hold as raw raster (before the reduction to `WORKING_SIDE`): a full
#: 90-megapixel RGB image (Pillow keeps RGB as 4 bytes a pixel) fits.
DEFAULT_MAX_DECODE_BYTES = 384 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_DECODES = 2

# Bytes a pixel costs while decoding in each Pillow mode, including the conversion that
# follows when a mode cannot be reduced as it is (palette and 1-bit go through RGBA or L
# first). Pillow stores every multi-band 8-bit mode as 4 bytes a pixel.
_BYTES_PER_PIXEL = {
    "1": 2,
    "L": 1,
    "P": 5,
    "I;16": 2,
    "I;16L": 2,
    "I;16B": 2,
    "I;16N": 2,
    "I": 4,
    "F": 4,
}
#: Modes not listed: the 4 bytes of Pillow's multi-band storage, or 8 for anything unknown
#: (a mode added by a plugin), the safe side.
_MULTIBAND = {"LA", "La", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
_HEIF_REGISTERED = False
_ORIENTATION = 0x0112
#: EXIF orientation -> the transposition that makes the picture upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class _DecodeBudget:
    """The process-wide bound on decoding: one per process, because memory is per process
    and the service, a worker and the CLI each decode in several threads at once."""

    def __init__(self, *, max_bytes: int, max_concurrent: int) -> None:
        self.max_bytes = max_bytes
        self.max_concurrent = max_concurrent
        self.gate = threading.BoundedSemaphore(max_concurrent)


_BUDGET = _DecodeBudget(
    max_bytes=DEFAULT_MAX_DECODE_BYTES, max_concurrent=DEFAULT_MAX_CONCURRENT_DECODES
)


def configure_decoding(*, max_bytes: int, max_concurrent: int) -> None:
    """Set the byte budget of one decode and how many decodes may run at once in this
    process (from ``ARTMATCH_MAX_DECODE_BYTES`` / ``ARTMATCH_MAX_CONCURRENT_DECODES``)."""
    global _BUDGET
    if max_bytes < 1 or max_concurrent < 1:
        raise ValueError("max_bytes and max_concurrent must be >= 1")
    if (max_bytes, max_concurrent) != (_BUDGET.max_bytes, _BUDGET.max_concurrent):
        # Decodes already running keep the gate they hold; new ones take the new gate.
        _BUDGET = _DecodeBudget(max_bytes=max_bytes, max_concurrent=max_concurrent)


def _register_heif() -> None:
    # pillow-heif teaches Pillow to open HEIC/HEIF phone photos; registered on first decode
    # rather than at import so importing artmatch stays cheap.
    global _HEIF_REGISTERED
    if not _HEIF_REGISTERED:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _HEIF_REGISTERED = True


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  #: upright, 8-bit RGB, longest side at most `WORKING_SIDE`
    sha256: str  #: of the original bytes
    format: str  #: e.g. "JPEG", "PNG", "HEIF"
    original_mode: str
    #: Width and height of the original photo (upright); ``size`` is smaller when reduced.
    original_size: tuple[int, int] | None = None
    #: What a search computed from these pixels, by name, for a second use of the same photo
    #: (a checked listing's keypoints and CNN vector are kept for re-checks): computing them
    #: twice doubled the time of a listing check.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @cached_property
    def array(self) -> np.ndarray:
        """The pixels as a read-only ``(H, W, 3)`` uint8 array, converted once."""
        return np.asarray(self.image)

    def to_array(self) -> np.ndarray:
        return self.array


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_cost(mode: str, size: tuple[int, int]) -> int:
    """Bytes of raster a decode of an image of ``mode`` and ``size`` holds at its peak."""
    per_pixel = _BYTES_PER_PIXEL.get(mode, 4 if mode in _MULTIBAND else 8)
    return size[0] * size[1] * per_pixel


def _scaled_to_8bit(arr: np.ndarray, *, floats: bool = False) -> Image.Image:
    # 16/32-bit and float greyscale: scale the real range into 8 bits instead of clipping to
    # white. float32 on the already reduced picture: small, whatever the original size.
    if arr.dtype != np.float32 or not arr.flags.writeable:
        arr = arr.astype(np.float32)
    if floats:
        np.nan_to_num(arr, copy=False)
    lo, hi = float(arr.min()), float(arr.max())
    # In place: one float copy at most, whatever the steps.
    arr -= np.float32(lo)
    arr *= np.float32(255.0 / (hi - lo)) if hi > lo else np.float32(0.0)
    return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")


def _reduce_16bit(img: Image.Image, factor: int) -> np.ndarray:
    """Box-average a 16-bit greyscale image by ``factor`` one strip at a time (Pillow cannot
    reduce these modes), so no full-size copy is made."""
    width, height = img.size
    out_w, out_h = max(1, width // factor), max(1, height // factor)
    out = np.empty((out_h, out_w), np.float32)
    for row in range(out_h):
        strip = np.asarray(img.crop((0, row * factor, out_w * factor, (row + 1) * factor)))
        block = strip.reshape(strip.shape[0], out_w, factor).astype(np.float32)
        out[row] = block.mean(axis=(0, 2))
    return out


def _reduced_rgb(img: Image.Image, factor: int) -> Image.Image:
    """``img`` (decoded) reduced by ``factor`` and converted to 8-bit RGB."""
    mode = img.mode
    if mode.startswith("I;16"):
        arr = _reduce_16bit(img, factor) if factor > 1 else np.asarray(img)
        return _scaled_to_8bit(arr)
    if mode in ("1", "P"):
        transparent = mode == "P" and "transparency" in img.info
        img = img.convert("RGBA" if transparent else ("L" if mode == "1" else "RGB"))
        mode = img.mode
    if factor > 1:
        img = img.reduce(factor)
    if mode in ("I", "F"):
        return _scaled_to_8bit(np.asarray(img), floats=mode == "F")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite on white: a transparent background reads as paper, not as black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if mode == "RGB" else img.convert("RGB")


def decode_image(
    data: bytes,
    *,
    source: str = "image",
    max_pixels: int = 90_000_000,
    max_bytes: int | None = None,
) -> DecodedImage:
    """Decode ``data`` into an upright RGB image, or raise `InvalidImage` saying why.

    ``source`` names the file or upload in the message. ``max_pixels`` and ``max_bytes`` (the
    raster a decode may hold; default: the process's, see `configure_decoding`) guard
    against decompression bombs: the header is checked before any pixel is decoded.
    """
    if not data:
        raise InvalidImage("empty file (0 bytes)", source=source)
    _register_heif()
    budget = _BUDGET
    limit = budget.max_bytes if max_bytes is None else max_bytes
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than raises) between max_pixels and 2x; we decide ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            width, height = img.size
            original_mode = img.mode
            if width <= 0 or height <= 0:
                raise InvalidImage(f"image has no pixels ({width}x{height})", source=source)
            if width * height > max_pixels:
                raise InvalidImage(
                    f"image is too large: {width}x{height} = {width * height:,} pixels "
                    f"(limit {max_pixels:,}); a decompression bomb or an unreduced scan",
                    source=source,
                )
            if max(width, height) > WORKING_SIDE:
                # JPEG decodes at 1/2, 1/4 or 1/8 scale directly: the full raster never exists.
                k = WORKING_SIDE / max(width, height)
                img.draft(None, (math.ceil(width * k), math.ceil(height * k)))
            cost = decode_cost(img.mode, img.size)
            if cost > limit:
                raise InvalidImage(
                    f"image is too large to decode: {width}x{height} in mode {img.mode} needs "
                    f"{cost / 2**20:,.0f} MiB (limit {limit / 2**20:,.0f} MiB)",
                    source=source,
                )
            with budget.gate:
                img.load()
                # Read before converting: the reduced copy does not keep the EXIF block.
                orientation = img.getexif().get(_ORIENTATION, 1)
                factor = math.ceil(max(img.size) / WORKING_SIDE)
                rgb = _reduced_rgb(img, factor)
                del img
            if orientation in _TRANSPOSE:
                rgb = rgb.transpose(_TRANSPOSE[orientation])
            original = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    except InvalidImage:
        raise
    except UnidentifiedImageError:
        raise InvalidImage(
            "not a readable image (an unsupported format, or not an image at all)",
            source=source,
        ) from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image is too large: {exc}", source=source) from None
    except MemoryError:
        raise InvalidImage("image is too large to decode (out of memory)", source=source) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt files as OSError/SyntaxError.
        reason = str(exc) or type(exc).__name__
        raise InvalidImage(f"corrupt or truncated image ({reason})", source=source) from None
    return DecodedImage(
        image=rgb,
        sha256=sha256_hex(data),
        format=fmt,
        original_mode=original_mode,
        original_size=original,
    )


def make_thumbnail(image: Image.Image, *, max_side: int = 256, quality: int = 85) -> bytes:
    """A JPEG thumbnail whose longest side is ``max_side`` pixels."""
    thumb = image.copy()
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
