"""The `Embedder` seam, its registry, and a small deterministic fake for unit tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from kernel.errors import ConfigError

if TYPE_CHECKING:
    from kernel.settings import EmbedderSettings

__all__ = [
    "Embedder",
    "FakeEmbedder",
    "available_embedders",
    "create_embedder",
    "l2_normalise",
    "register_embedder",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns RGB images into L2-normalised float32 vectors; equal inputs give equal outputs."""

    #: Registry name, stored with every vector.
    name: str
    #: Changes whenever the same image would get a different vector (weights, preprocessing).
    version: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """A ``(len(images), dim)`` float32 array of unit vectors."""


_Factory = Callable[["EmbedderSettings"], Embedder]
_REGISTRY: dict[str, _Factory] = {}
_PREFIX_REGISTRY: dict[str, Callable[[str, EmbedderSettings], Embedder]] = {}


def register_embedder(name: str) -> Callable[[_Factory], _Factory]:
    def decorator(factory: _Factory) -> _Factory:
        _REGISTRY[name] = factory
        return factory

    return decorator


def register_embedder_family(
    prefix: str,
) -> Callable[
    [Callable[[str, EmbedderSettings], Embedder]], Callable[[str, EmbedderSettings], Embedder]
]:
    """Register names of the form ``prefix:variant`` (e.g. ``torchvision:resnet50``)."""

    def decorator(
        factory: Callable[[str, EmbedderSettings], Embedder],
    ) -> Callable[[str, EmbedderSettings], Embedder]:
        _PREFIX_REGISTRY[prefix] = factory
        return factory

    return decorator


def _load_builtin() -> None:
    # The real backends import torch; load them only when an embedder is asked for.
    import models.embedders.efficientnet  # noqa: F401
    import models.embedders.torchvision_backbone  # noqa: F401


def available_embedders() -> list[str]:
    _load_builtin()
    return sorted([*_REGISTRY, *(f"{p}:<arch>" for p in _PREFIX_REGISTRY)])


def create_embedder(settings: EmbedderSettings) -> Embedder:
    """Build the embedder named in ``settings``; an unknown name lists the valid ones."""
    _load_builtin()
    name = settings.name
    if name in _REGISTRY:
        return _REGISTRY[name](settings)
    prefix, sep, variant = name.partition(":")
    if sep and prefix in _PREFIX_REGISTRY:
        return _PREFIX_REGISTRY[prefix](variant, settings)
    raise ConfigError(
        f"unknown embedder {name!r}; choose one of: {', '.join(available_embedders())}"
    )


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class FakeEmbedder:
    """A cheap, deterministic embedder for unit tests: a tiny colour thumbnail, normalised.

    Similar pictures get similar vectors, which is all the pipelines under test need.
    """

    name = "fake"
    version = "1"
    #: Runs in an ingest's worker processes (`ingest.prepare`), as ONNX Runtime's does.
    portable = True

    def __init__(self, side: int = 8) -> None:
        self.side = side
        self.dim = side * side * 3

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        for img in images:
            small = img.convert("RGB").resize((self.side, self.side), Image.Resampling.BILINEAR)
            arr = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
            rows.append(arr - arr.mean())
        return l2_normalise(np.stack(rows))


@register_embedder("fake")
def _fake(settings: EmbedderSettings) -> Embedder:
    return FakeEmbedder()
