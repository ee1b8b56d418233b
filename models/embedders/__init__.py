"""Global image descriptors behind one `Embedder` protocol, chosen by name from a registry."""

from models.embedders.base import (
    Embedder,
    FakeEmbedder,
    available_embedders,
    create_embedder,
    register_embedder,
)

__all__ = [
    "Embedder",
    "FakeEmbedder",
    "available_embedders",
    "create_embedder",
    "register_embedder",
]
