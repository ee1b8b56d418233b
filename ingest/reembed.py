"""Embedding the photos that have no vector under the current model (after a model change)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from artmatch.container import Services
from models.images import decode_image

__all__ = ["reembed_missing"]


def reembed_missing(
    services: Services, *, on_progress: Callable[[int, int], None] | None = None
) -> int:
    emb = services.embedder
    todo = services.catalogue.photos_without_vector(emb.name, emb.version)
    batch_size = services.settings.embedder.batch_size
    done = 0
    for start in range(0, len(todo), batch_size):
        refs = todo[start : start + batch_size]
        images = [
            decode_image(
                services.blobs.get(r.blob_key),
                source=r.blob_key,
                max_pixels=services.settings.max_image_pixels,
            ).image
            for r in refs
        ]
        vectors = emb.embed(images)
        services.catalogue.store_vectors(
            model=emb.name,
            model_version=emb.version,
            photo_ids=[r.photo_id for r in refs],
            vectors=vectors,
        )
        done += len(refs)
        if on_progress:
            on_progress(done, len(todo))
    if not todo and on_progress:
        on_progress(0, 0)
    return int(np.int64(done))
