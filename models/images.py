"""Decoding untrusted image bytes into clean RGB pictures, with one-line errors.

Phone photos arrive EXIF-rotated, as HEIC, CMYK, 16-bit, palette or with alpha; scans arrive as
huge TIFFs; uploads arrive truncated or as something else entirely. Everything downstream sees
an upright 8-bit RGB `PIL.Image` or an `InvalidImage` naming the problem.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kernel.errors import InvalidImage

__all__ = [
    "DecodedImage",
    "decode_image",
    "make_thumbnail",
    "sha256_hex",
]

_HEIF_REGISTERED = False


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
    image: Image.Image  #: upright, 8-bit RGB
    sha256: str  #: of the original bytes
    format: str  #: e.g. "JPEG", "PNG", "HEIF"
    original_mode: str

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


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the real range into 8 bits instead of clipping to white.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Composite on white: a transparent background reads as paper, not as black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(
    data: bytes, *, source: str = "image", max_pixels: int = 90_000_000
) -> DecodedImage:
    """Decode ``data`` into an upright RGB image, or raise `InvalidImage` saying why.

    ``source`` names the file or upload in the message. ``max_pixels`` guards against
    decompression bombs: the header is checked before any pixel is decoded.
    """
    if not data:
        raise InvalidImage("empty file (0 bytes)", source=source)
    _register_heif()
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than raises) between max_pixels and 2x; we decide ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            width, height = img.size
            if width <= 0 or height <= 0:
                raise InvalidImage(f"image has no pixels ({width}x{height})", source=source)
            if width * height > max_pixels:
                raise InvalidImage(
                    f"image is too large: {width}x{height} = {width * height:,} pixels "
                    f"(limit {max_pixels:,}); a decompression bomb or an unreduced scan",
                    source=source,
                )
            img.load()
            original_mode = img.mode
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except InvalidImage:
        raise
    except UnidentifiedImageError:
        raise InvalidImage(
            "not an image Pillow can read (unsupported format or not an image at all)",
            source=source,
        ) from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image is too large: {exc}", source=source) from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated and corrupt files as OSError/SyntaxError.
        reason = str(exc) or type(exc).__name__
        raise InvalidImage(f"corrupt or truncated image ({reason})", source=source) from None
    return DecodedImage(image=rgb, sha256=sha256_hex(data), format=fmt, original_mode=original_mode)


def make_thumbnail(image: Image.Image, *, max_side: int = 256, quality: int = 85) -> bytes:
    """A JPEG thumbnail whose longest side is ``max_side`` pixels."""
    thumb = image.copy()
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
