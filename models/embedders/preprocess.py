"""CNN input preparation without torch: the ONNX runtime and the torch embedders share it, so
both see the very same pixels (their vectors agree to float rounding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = ["MIN_SIDE", "lite0_version", "to_pixels"]


def lite0_version(*, image_size: int, scales: Sequence[float], gem_p: float) -> str:
    """The model version of EfficientNet-Lite0 as artmatch feeds and pools it: one string for
    both runtimes, whose vectors are the same (an index built with one serves the other)."""
    return (
        f"lite0-imagenet/gem{gem_p:g}/s{image_size}/"
        + "+".join(f"{s:g}" for s in scales)
        + "/aspect"
    )


#: Fewest pixels on a side the CNNs are given (EfficientNet-Lite0 downsamples 32 times).
MIN_SIDE = 64


def to_pixels(
    image: Image.Image,
    *,
    longest_side: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> np.ndarray:
    """A ``(1, 3, H, W)`` normalised float32 array, the longer side resized to ``longest_side``.

    A side that comes out shorter than `MIN_SIDE` (a scroll, a frieze, a panorama: about
    5:1 and beyond) is padded with the mean colour to it, keeping the aspect: the network's
    first layers cannot run on fewer pixels.
    """
    w, h = image.size
    scale = longest_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # convert() copies even an RGB picture (0.4 ms of a 1,024 px photo): only where needed.
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    resized = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    pixels = np.asarray(resized, dtype=np.float32) / np.float32(255.0)
    arr = (pixels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    pad_h, pad_w = max(0, MIN_SIDE - arr.shape[0]), max(0, MIN_SIDE - arr.shape[1])
    if pad_h or pad_w:
        # Zero after normalisation is the mean colour.
        arr = np.pad(
            arr, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
        )
    return np.ascontiguousarray(arr.transpose(2, 0, 1))[None]
