"""Checks on uploaded photos made before anything is stored: is each file an image at all,
and which view label goes with it."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.errors import InvalidImage, InvalidInput

__all__ = ["check_images", "is_image", "not_image_message", "view_labels"]

#: The first bytes of the image formats the decoder reads (``models.images``).
_SIGNATURES = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
)
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif")


def is_image(data: bytes) -> bool:
    """Whether ``data`` starts like one of the image formats the decoder reads."""
    if data.startswith(_SIGNATURES):
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def check_images(files: Sequence[tuple[str, bytes]]) -> None:
    """Refuse the upload, before anything is stored, when a file is no image at all (a PDF,
    a Word file dropped with the photos): by its first bytes, not by its name or type."""
    bad = [name for name, data in files if not is_image(data)]
    if bad:
        raise InvalidImage(f"{not_image_message(', '.join(bad))}; nothing was stored")


def not_image_message(name: str) -> str:
    return f"{name}: not an image (JPEG, PNG, HEIC, WebP, TIFF, GIF or BMP)"


def view_labels(
    files: Sequence[tuple[str, bytes]], views: Sequence[str | None]
) -> list[str | None]:
    """One label per file, in order (blank: none); fewer labels than files leave the rest
    unlabelled, more is an error."""
    if len(views) > len(files):
        raise InvalidInput(f"{len(views)} view labels for {len(files)} photos")
    return [(v or "").strip() or None for v in views] + [None] * (len(files) - len(views))
