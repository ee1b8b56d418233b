"""Build catalogue folders (CSV + photos) on disk for pipeline and CLI tests, and catalogue
rows without photos for storage tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from kernel.schemas import ObjectCreate
from models.local_features import FEATURES_KEY
from storage.catalogue import Catalogue
from storage.catalogue.repository import NewPhoto
from tests.utils.images import jpeg_bytes, photographed, textured_object


def add_feature_photo(catalogue: Catalogue, n: int, features: bytes, *, model: str = "fake") -> int:
    """A photo row of object ``o<n>`` (no blobs) whose local features are ``features``; its
    photo id."""
    sha = f"{n:064x}"
    return catalogue.add_photo(
        record=ObjectCreate(object_id=f"o{n}", institution="M"),
        photo=NewPhoto(
            sha256=sha, blob_key=sha, thumbnail_key=sha, width=1, height=1, format="jpeg"
        ),
        model=model,
        model_version="1",
        vector=np.ones(4, dtype=np.float32),
        local_features=(FEATURES_KEY, features),
    ).photo_id


def write_catalogue(root: Path, n_objects: int = 4, photos_per_object: int = 1) -> Path:
    """``root/catalogue.csv`` with objects obj-0.. and their photos; returns the CSV path."""
    (root / "photos").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_objects):
        for j in range(photos_per_object):
            img = textured_object(i) if j == 0 else photographed(textured_object(i), seed=j)
            name = f"photos/obj{i}_{j}.jpg"
            (root / name).write_bytes(jpeg_bytes(img))
            rows.append(
                {
                    "image": name,
                    "object_id": f"obj-{i}",
                    "title": f"Object {i}",
                    "maker": "Anon",
                    "view": "front" if j == 0 else f"view{j}",
                }
            )
    path = root / "catalogue.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
