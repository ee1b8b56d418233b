"""Search: embed a query photo, find the nearest catalogue photos, verify, rank objects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from artmatch.container import Services
from artmatch.schemas import ObjectStatus, RegionMatch, SearchHit, SearchResult
from artmatch.verified import (
    Candidate,
    assign_regions,
    extract_query_features,
    pool_candidates,
    query_regions,
    verify_candidates,
)
from models.calibration import default_calibration
from models.embedders import Embedder
from models.images import DecodedImage
from storage.catalogue import PhotoRef

__all__ = ["embed_query", "query_views", "search"]


def query_views(image: Image.Image, crops: Sequence[float]) -> list[Image.Image]:
    """The whole photo plus centre crops keeping ``f`` of each side."""
    w, h = image.size
    views = [image]
    for f in crops:
        cw, ch = max(16, round(w * f)), max(16, round(h * f))
        x, y = (w - cw) // 2, (h - ch) // 2
        views.append(image.crop((x, y, x + cw, y + ch)))
    return views


def embed_query(embedder: Embedder, image: Image.Image, crops: Sequence[float]) -> np.ndarray:
    return embedder.embed(query_views(image, crops))


def search(
    services: Services,
    query: DecodedImage,
    *,
    top_k: int = 10,
    statuses: Sequence[ObjectStatus] | None = None,
    institutions: Sequence[str] | None = None,
    verify: bool | None = None,
) -> SearchResult:
    """Ranked catalogue objects for ``query``; ``verify`` overrides the setting."""
    settings = services.settings.match
    verify = settings.verify if verify is None else verify
    allowed = None
    if statuses or institutions:
        allowed = services.catalogue.photo_ids_where(statuses=statuses, institutions=institutions)
    size = max(services.index.size, 1)
    k = min(max(top_k, settings.verify_top) * settings.photos_per_object, size)

    whole = services.index.search(
        embed_query(services.embedder, query.image, settings.query_crops), k, allowed_ids=allowed
    )
    region_results = []
    if verify:
        array = query.to_array()
        boxes = query_regions(array, settings.max_regions)
        if boxes:
            crops = [query.image.crop(tuple(b)) for b in boxes]
            vectors = services.embedder.embed(crops)
            scores, ids = services.index.search(vectors, min(k, 20), allowed_ids=allowed)
            region_results = [(scores[i : i + 1], ids[i : i + 1]) for i in range(len(boxes))]
    photo_ids = {int(i) for arr in [whole[1], *(r[1] for r in region_results)] for i in arr.ravel()}
    refs = services.catalogue.photo_refs(i for i in photo_ids if i >= 0)
    photo_to_object = {pid: ref.object_id for pid, ref in refs.items()}
    pool = pool_candidates(
        services,
        whole=whole,
        regions=region_results,
        top=max(top_k, settings.verify_top) if verify else top_k,
        photo_to_object=photo_to_object,
    )
    candidates = list(pool.values())
    calibration = default_calibration()
    if verify:
        threshold = settings.confidence_threshold or calibration.threshold
        features = extract_query_features(query.to_array())
        verify_candidates(services, query.image, features, candidates, calibration)
        candidates.sort(key=lambda c: (-c.probability, -c.cosine))
        owners = assign_regions(candidates, threshold)
    else:
        threshold = settings.threshold
        for c in candidates:
            c.probability = c.cosine
        candidates.sort(key=lambda c: -c.cosine)
        owners = []
    hits = [
        _hit(rank, cand, refs[cand.photo_id], threshold=threshold)
        for rank, cand in enumerate(candidates[:top_k], start=1)
    ]
    return SearchResult(
        query_sha256=query.sha256,
        query_size=query.size,
        threshold_kind="probability" if verify else "cosine",
        threshold=threshold,
        verification=verify,
        model=f"{services.embedder.name} {services.embedder.version}",
        index_version=services.index.meta.version,
        objects_searched=services.catalogue.count_objects_where(
            statuses=statuses, institutions=institutions
        ),
        statuses=list(statuses) if statuses else None,
        institutions=list(institutions) if institutions else None,
        hits=hits,
        regions=[
            RegionMatch(
                box=tuple(int(v) for v in o.region),  # type: ignore[arg-type]
                object_id=o.object_id,
                confidence=round(o.probability, 4),
                inliers=o.inliers,
            )
            for o in owners
            if o.region is not None
        ],
    )


def _hit(rank: int, cand: Candidate, ref: PhotoRef, *, threshold: float) -> SearchHit:
    return SearchHit(
        rank=rank,
        object_id=cand.object_id,
        institution=ref.institution,
        status=ref.status,
        title=ref.title,
        maker=ref.maker,
        score=round(cand.cosine, 4),
        confidence=round(cand.probability, 4),
        inliers=cand.inliers if cand.verification is not None else None,
        verified=cand.verified,
        region=tuple(int(v) for v in cand.verification.query_box)  # type: ignore[arg-type]
        if cand.verified and cand.verification and cand.verification.query_box
        else None,
        is_match=cand.probability >= threshold,
        photo_id=cand.photo_id,
        photo_view=ref.view,
        thumbnail_key=ref.thumbnail_key,
        loss_date=ref.loss_date,
        loss_reference=ref.loss_reference,
    )
