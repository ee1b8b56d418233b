"""``memory``: a brute-force numpy twin of the FAISS descriptor index, for unit tests.
Nothing persists: `save` only counts calls and `load` finds nothing, so
`engine.services.open_descriptor_index` rebuilds it each start."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kernel.errors import IndexNotReady
from storage.descriptors.base import (
    DescriptorIndex,
    DescriptorMeta,
    check_descriptors,
    pack_ids,
    unpack_ids,
)
from storage.descriptors.registry import register_descriptor_index

__all__ = ["MemoryDescriptorIndex"]


@register_descriptor_index("memory")
class MemoryDescriptorIndex:
    """Exact squared-L2 search over every photo's descriptors, held per photo."""

    def __init__(self, meta: DescriptorMeta) -> None:
        self.meta = meta
        self._photos: dict[int, np.ndarray] = {}
        self.saved = 0

    @classmethod
    def create(
        cls, *, directory: Path | None = None, meta: DescriptorMeta
    ) -> MemoryDescriptorIndex:
        return cls(meta)

    @classmethod
    def load(cls, directory: Path, *, features_key: str) -> MemoryDescriptorIndex:
        raise IndexNotReady("an in-memory descriptor index is never saved")

    @property
    def size(self) -> int:
        return sum(len(d) for d in self._photos.values())

    def photo_ids(self) -> np.ndarray:
        return np.array(sorted(self._photos), dtype=np.int64)

    def add(self, photo_id: int, descriptors: np.ndarray) -> None:
        self._photos[int(photo_id)] = check_descriptors(descriptors, self.meta.dim).copy()
        self.meta.version += 1

    def remove(self, photo_ids: Sequence[int] | np.ndarray) -> int:
        removed = 0
        for pid in np.asarray(photo_ids, dtype=np.int64).reshape(-1):
            held = self._photos.pop(int(pid), None)
            if held is not None:
                removed += len(held)
                self.meta.version += 1
        return removed

    def search(self, descriptors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        queries = np.asarray(descriptors, dtype=np.float32).reshape(-1, self.meta.dim)
        n = len(queries)
        dist = np.full((n, k), np.inf, np.float32)
        photos = np.full((n, k), -1, np.int64)
        points = np.full((n, k), -1, np.int32)
        held = [(pid, d) for pid, d in sorted(self._photos.items()) if len(d)]
        if not held or not n:
            return dist, photos, points
        vecs = np.concatenate([d for _, d in held])
        labels = np.concatenate([pack_ids(pid, len(d)) for pid, d in held])
        sq = (queries**2).sum(1, keepdims=True) - 2 * queries @ vecs.T + (vecs**2).sum(1)[None, :]
        sq = np.maximum(sq, 0).astype(np.float32)
        order = np.argsort(sq, axis=1, kind="stable")[:, :k]
        m = order.shape[1]
        dist[:, :m] = np.take_along_axis(sq, order, axis=1)
        photos[:, :m], points[:, :m] = unpack_ids(labels[order])
        return dist, photos, points

    def save(self) -> None:
        self.saved += 1

    def training_points(self, expected: int) -> int:
        return 0

    def train(self, sample: np.ndarray, *, expected: int) -> None:
        """Nothing to train: the twin is always exact."""

    @property
    def outgrown(self) -> bool:
        return False

    def outgrown_after(self, counts: Sequence[int]) -> bool:
        return False

    def adopt(self, rebuilt: DescriptorIndex) -> None:
        if not isinstance(rebuilt, MemoryDescriptorIndex):
            raise TypeError("a memory descriptor index adopts only another one")
        self._photos = dict(rebuilt._photos)
        self.meta.version += 1
