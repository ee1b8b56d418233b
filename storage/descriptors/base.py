"""What a descriptor index is: the protocol the engine searches, and its metadata.

A descriptor index holds the local descriptors (RootSIFT: float32, unit rows, 128-d) of every
catalogue photo. Each descriptor is labelled with its photo id and its keypoint's position in
that photo's stored `LocalFeatures`, so a query descriptor's neighbours name both the photo
to vote for and the point to fit geometry with. Labels pack both into one int64:
``photo_id * MAX_PER_PHOTO + keypoint``, so a photo's descriptors form one contiguous id range
(removal by range, no side table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kernel.errors import InvalidInput

__all__ = [
    "MAX_PER_PHOTO",
    "DescriptorIndex",
    "DescriptorMeta",
    "check_descriptors",
    "descriptor_stem",
    "pack_ids",
    "unpack_ids",
]

#: Keypoints per photo the labels leave room for (stored features hold at most 1,000).
MAX_PER_PHOTO = 4096


def pack_ids(photo_id: int, count: int) -> np.ndarray:
    """The labels of a photo's first ``count`` descriptors."""
    if not 0 <= count <= MAX_PER_PHOTO:
        raise ValueError(f"a photo may have at most {MAX_PER_PHOTO} descriptors, got {count}")
    return np.int64(photo_id) * MAX_PER_PHOTO + np.arange(count, dtype=np.int64)


def unpack_ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(photo ids, keypoint indices) of ``labels``; -1 (no neighbour) stays -1 in both."""
    labels = np.asarray(labels, dtype=np.int64)
    missing = labels < 0
    photos = np.where(missing, -1, labels // MAX_PER_PHOTO)
    points = np.where(missing, -1, labels % MAX_PER_PHOTO)
    return photos, points.astype(np.int32)


def check_descriptors(descriptors: np.ndarray, dim: int) -> np.ndarray:
    """One photo's descriptors as contiguous float32 N x dim, or `InvalidInput`."""
    arr = np.ascontiguousarray(descriptors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim or len(arr) > MAX_PER_PHOTO:
        raise InvalidInput(
            f"expected at most {MAX_PER_PHOTO} descriptors of dimension {dim}, "
            f"got an array of shape {arr.shape}"
        )
    return arr


def descriptor_stem(features_key: str) -> str:
    """A file-name-safe name for the index of one kind of stored features."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in features_key)
    return f"descriptors__{safe}"[:180]


@dataclass
class DescriptorMeta:
    #: The stored features these descriptors come from (`models.local_features.FEATURES_KEY`).
    features_key: str
    dim: int = 128
    #: Bumped by every add and remove.
    version: int = 0
    #: `storage.index.base.fingerprint_ids` of the photo ids held, compared with the
    #: catalogue's at start to decide whether the saved index can be trusted.
    fingerprint: str = ""
    #: The catalogue's index version (`storage.catalogue.index_state`) this index reflects;
    #: a save never replaces a file that reflects a newer one (`storage.index.base`).
    catalogue_version: int = 0


class DescriptorIndex(Protocol):
    meta: DescriptorMeta

    @property
    def size(self) -> int:
        """Descriptors held."""
        ...

    def photo_ids(self) -> np.ndarray:
        """The distinct photo ids held, sorted."""
        ...

    def add(self, photo_id: int, descriptors: np.ndarray) -> None:
        """Index one photo's descriptors (float32, N x dim, N <= MAX_PER_PHOTO); a photo
        already held is replaced."""
        ...

    def remove(self, photo_ids: Sequence[int] | np.ndarray) -> int:
        """Forget these photos; returns the number of descriptors removed."""
        ...

    def search(self, descriptors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each query descriptor its ``k`` nearest: (squared L2 distances float32 N x k,
        photo ids int64 N x k, keypoint indices int32 N x k), nearest first, -1 where fewer."""
        ...

    def save(self) -> None:
        """Persist where it was created or loaded from (if it persists at all)."""
        ...

    def training_points(self, expected: int) -> int:
        """Sample descriptors `train` wants for about ``expected`` descriptors (0: none)."""
        ...

    def train(self, sample: np.ndarray, *, expected: int) -> None:
        """Prepare for about ``expected`` descriptors, given a ``sample`` of them, before a
        rebuild adds them (an index that needs no training ignores it)."""
        ...

    @property
    def outgrown(self) -> bool:
        """True when the index has grown far past what it was trained for, so a rebuild
        would search faster."""
        ...

    def outgrown_after(self, counts: Sequence[int]) -> bool:
        """True when adding new photos of ``counts`` descriptors each is sure to leave it
        `outgrown`: an ingest run then rebuilds it instead of adding them first."""
        ...

    def adopt(self, rebuilt: DescriptorIndex) -> None:
        """Take over the contents of ``rebuilt`` (an index of the same kind, rebuilt from
        the stored features), in place: holders of this object see the new one."""
        ...
