"""Pieces shared by the torch embedders: preprocessing, GeM pooling, thread settings."""

from __future__ import annotations

import torch
from PIL import Image

from models.embedders.preprocess import MIN_SIDE, to_pixels

__all__ = ["MIN_SIDE", "gem", "set_threads", "to_tensor"]


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
    """`to_pixels` as a tensor: ``(1, 3, H, W)``, the longer side resized to ``longest_side``."""
    return torch.from_numpy(to_pixels(image, longest_side=longest_side, mean=mean, std=std))


def gem(fmap: torch.Tensor, *, p: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Generalised-mean pooling (Radenović et al.): between average (p=1) and max pooling."""
    return fmap.clamp(min=eps).pow(p).mean(dim=(-2, -1)).pow(1.0 / p)
