"""Pieces shared by the torch embedders: preprocessing, GeM pooling, thread settings."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["gem", "set_threads", "to_tensor"]


def set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def to_tensor(
    image: Image.Image,
    *,
    longest_side: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> torch.Tensor:
    """A ``(1, 3, H, W)`` normalised tensor, the longer side resized to ``longest_side``."""
    w, h = image.size
    scale = longest_side / max(w, h)
    size = (max(16, round(w * scale)), max(16, round(h * scale)))
    resized = image.convert("RGB").resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    arr: np.ndarray = np.asarray(resized, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


def gem(fmap: torch.Tensor, *, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised-mean pooling (Radenović et al.): between average (p=1) and max pooling."""
    return fmap.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)
