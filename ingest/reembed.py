"""Bringing stored photos up to the current models: global vectors of the current embedder
and local features of the current method, for photos that have none (after a model change)."""

from __future__ import annotations

from collections.abc import Callable

from engine.services import Services
from models.images import decode_image
from models.local_features import FEATURES_KEY, extract_local_features
from storage.catalogue import PhotoRef

__all__ = ["reembed_missing"]


def _decode(services: Services, ref: PhotoRef):  # type: ignore[no-untyped-def]
    data = services.blobs.get(ref.blob_key)
    return decode_image(data, source=ref.blob_key, max_pixels=services.settings.max_image_pixels)


def reembed_missing(
    services: Services, *, on_progress: Callable[[int, int], None] | None = None
) -> int:
    """Embed (and extract local features of) every photo that lacks them; returns the count
    of photos embedded."""
    emb = services.embedder
    todo = services.catalogue.photos_without_vector(emb.name, emb.version)
    no_features = (
        services.catalogue.photos_without_local_features(FEATURES_KEY)
        if services.settings.match.verify
        else []
    )
    total = len(todo) + len(no_features)
    batch_size = services.settings.embedder.batch_size
    done = 0
    for start in range(0, len(todo), batch_size):
        refs = todo[start : start + batch_size]
        vectors = emb.embed([_decode(services, r).image for r in refs])
        services.catalogue.store_vectors(
            model=emb.name,
            model_version=emb.version,
            photo_ids=[r.photo_id for r in refs],
            vectors=vectors,
        )
        done += len(refs)
        if on_progress:
            on_progress(done, total)
    for ref in no_features:
        features = extract_local_features(_decode(services, ref).to_array())
        services.catalogue.store_local_features(ref.photo_id, FEATURES_KEY, features.to_bytes())
        done += 1
        if on_progress:
            on_progress(done, total)
    if not total and on_progress:
        on_progress(0, 0)
    return len(todo)
