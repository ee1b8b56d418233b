"""Bad and awkward image input: each gets a clear `InvalidImage`, or is normalised to RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kernel.errors import InvalidImage
from models.images import WORKING_SIDE, decode_cost, decode_image, make_thumbnail
from tests.utils.images import jpeg_bytes, png_bytes, textured_object


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_plain_jpeg_decodes_to_rgb() -> None:
    decoded = decode_image(jpeg_bytes(textured_object(1)), source="a.jpg")
    assert decoded.image.mode == "RGB"
    assert decoded.size == (320, 400)
    assert decoded.format == "JPEG"
    assert len(decoded.sha256) == 64


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty file"),
        (b"this is a text file, not a photo", "not an image"),
        (b"%PDF-1.4\n%...", "not an image"),
    ],
)
def test_non_images_are_refused_with_reason(data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidImage, match=fragment) as info:
        decode_image(data, source="upload.bin")
    assert str(info.value).startswith("upload.bin: ")


def test_truncated_jpeg_is_refused() -> None:
    data = jpeg_bytes(textured_object(2))
    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], source="cut.jpg")


def test_corrupt_png_is_refused() -> None:
    data = bytearray(png_bytes(textured_object(3)))
    data[60:200] = b"\x00" * 140
    with pytest.raises(InvalidImage, match="corrupt"):
        decode_image(bytes(data), source="bad.png")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    big = Image.new("L", (4000, 3000))
    data = _save(big, "PNG", optimize=True)
    with pytest.raises(InvalidImage, match="too large: 4000x3000"):
        decode_image(data, source="bomb.png", max_pixels=1_000_000)


@pytest.mark.parametrize("mode", ["CMYK", "P", "L", "LA", "RGBA", "I;16", "1"])
def test_unusual_modes_become_rgb(mode: str) -> None:
    src = textured_object(4, size=(64, 48))
    if mode == "I;16":
        arr = (np.asarray(src.convert("L"), dtype=np.uint16) * 200).astype(np.uint16)
        img = Image.fromarray(arr)  # uint16 -> mode I;16
        data = _save(img, "PNG")
    else:
        img = src.convert(mode)
        data = _save(img, "TIFF" if mode == "CMYK" else "PNG")
    decoded = decode_image(data, source=f"{mode}.img")
    assert decoded.image.mode == "RGB"
    assert decoded.size == (64, 48)
    if mode == "I;16":
        # the 16-bit range is scaled, not clipped to white
        assert 0 < np.asarray(decoded.image).mean() < 250


def test_transparent_background_becomes_white() -> None:
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    decoded = decode_image(_save(img, "PNG"))
    assert np.asarray(decoded.image)[0, 0].tolist() == [255, 255, 255]


def test_exif_rotated_phone_photo_is_upright() -> None:
    img = textured_object(5, size=(80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    data = _save(img, "JPEG", exif=exif.tobytes())
    decoded = decode_image(data)
    assert decoded.size == (40, 80)


def test_heic_photo_decodes() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    data = _save(textured_object(6, size=(64, 64)), "HEIF", quality=90)
    decoded = decode_image(data, source="phone.heic")
    assert decoded.format in ("HEIF", "HEIC")
    assert decoded.size == (64, 64)


def test_thumbnail_fits_in_box() -> None:
    thumb = Image.open(io.BytesIO(make_thumbnail(textured_object(7, (800, 300)), max_side=128)))
    assert max(thumb.size) == 128
    assert thumb.format == "JPEG"


def test_zero_pixel_image_is_refused() -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)  # 0 x 0 pixels, 8-bit RGB
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    with pytest.raises(InvalidImage) as info:
        decode_image(data, source="empty.png")
    assert str(info.value).startswith("empty.png: ")


def _grey16(size: tuple[int, int]) -> bytes:
    width, height = size
    ramp = np.linspace(1000, 60000, width, dtype=np.float64).astype(np.uint16)
    return _save(Image.fromarray(np.broadcast_to(ramp, (height, width)).copy()), "PNG")


def test_16bit_bomb_decodes_without_full_size_float_copies() -> None:
    import tracemalloc

    data = _grey16((4500, 5000))  # 22.5 Mpx: 45 MB as 16-bit; the old float64 path used 0.5 GB
    tracemalloc.start()
    try:
        decoded = decode_image(data, source="scan.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded.original_size == (4500, 5000)
    assert max(decoded.size) <= WORKING_SIDE
    assert peak < 40 * 2**20, f"numpy peak {peak / 2**20:.0f} MiB"
    # the range is scaled into 8 bits, not clipped: dark on the left, light on the right
    row = np.asarray(decoded.image)[decoded.size[1] // 2, :, 0]
    assert row[0] < 10 and row[-1] > 245


def test_big_jpeg_is_decoded_reduced_in_draft_mode() -> None:
    data = jpeg_bytes(textured_object(8, size=(9000, 6000)), quality=60)
    decoded = decode_image(data, source="big.jpg")
    assert decoded.original_size == (9000, 6000)
    assert max(decoded.size) <= WORKING_SIDE and decoded.size[0] * 2 == decoded.size[1] * 3


@pytest.mark.parametrize(("mode", "fmt"), [("RGB", "PNG"), ("RGBA", "TIFF"), ("P", "PNG")])
def test_big_photos_of_other_formats_are_reduced_after_decoding(mode: str, fmt: str) -> None:
    img = Image.new(mode, (8000, 900), 40)
    decoded = decode_image(_save(img, fmt), source=f"big.{fmt}")
    assert decoded.original_size == (8000, 900) and decoded.size == (4000, 450)
    assert decoded.image.mode == "RGB"


def test_the_byte_budget_counts_the_mode() -> None:
    # Same pixels, twice the bytes: 16-bit grey passes a budget that 32-bit grey does not.
    assert decode_cost("I;16", (1000, 1000)) == 2_000_000
    assert decode_cost("RGB", (1000, 1000)) == 4_000_000
    data = _save(Image.new("I", (1500, 1000)), "TIFF")
    with pytest.raises(InvalidImage, match=r"too large to decode: 1500x1000 in mode I needs 6 MiB"):
        decode_image(data, source="deep.tif", max_bytes=5 * 2**20)
    assert decode_image(_grey16((1500, 1000)), max_bytes=5 * 2**20).size == (1500, 1000)


def test_no_more_decodes_at_once_than_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from models import images

    running, peak, lock = 0, 0, threading.Lock()
    real = images._reduced_rgb

    def counting(img: Image.Image, factor: int) -> Image.Image:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            threading.Event().wait(0.02)
            return real(img, factor)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(images, "_reduced_rgb", counting)
    data = png_bytes(textured_object(9, size=(64, 64)))
    try:
        images.configure_decoding(max_bytes=2**28, max_concurrent=2)
        threads = [threading.Thread(target=decode_image, args=(data,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        images.configure_decoding(
            max_bytes=images.DEFAULT_MAX_DECODE_BYTES,
            max_concurrent=images.DEFAULT_MAX_CONCURRENT_DECODES,
        )
    assert peak == 2


@pytest.mark.parametrize("size", [(2000, 190), (190, 2000), (4000, 100), (1, 1), (3, 3000)])
def test_any_shape_decodes_and_thumbnails(size: tuple[int, int]) -> None:
    decoded = decode_image(png_bytes(textured_object(10, size=(64, 64)).resize(size)))
    assert decoded.size == size
    thumb = Image.open(io.BytesIO(make_thumbnail(decoded.image, max_side=256)))
    assert max(thumb.size) == min(256, max(size)) and min(thumb.size) >= 1
