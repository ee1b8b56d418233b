"""Build catalogue folders (CSV + photos) on disk for pipeline and CLI tests."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.utils.images import jpeg_bytes, photographed, textured_object


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
