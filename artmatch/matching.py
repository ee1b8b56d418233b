"""Global search: embed a query photo, find the nearest catalogue photos, rank objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from artmatch.container import Services
from artmatch.schemas import ObjectStatus, SearchHit, SearchResult
from models.embedders import Embedder
from models.images import DecodedImage

__all__ = ["ObjectScore", "embed_query", "rank_objects", "search"]


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


@dataclass(frozen=True)
class ObjectScore:
    photo_id: int
    score: float


def rank_objects(
    scores: np.ndarray, ids: np.ndarray, photo_to_object: dict[int, str]
) -> list[tuple[str, ObjectScore]]:
    """Aggregate photo neighbours of every query view per object: an object's best photo."""
    best: dict[str, ObjectScore] = {}
    for score, pid in zip(scores.reshape(-1), ids.reshape(-1), strict=True):
        if pid < 0:
            continue
        obj = photo_to_object.get(int(pid))
        if obj is None:
            continue
        if obj not in best or score > best[obj].score:
            best[obj] = ObjectScore(photo_id=int(pid), score=float(score))
    return sorted(best.items(), key=lambda kv: -kv[1].score)


def search(
    services: Services,
    query: DecodedImage,
    *,
    top_k: int = 10,
    statuses: Sequence[ObjectStatus] | None = None,
    institutions: Sequence[str] | None = None,
) -> SearchResult:
    settings = services.settings.match
    vectors = embed_query(services.embedder, query.image, settings.query_crops)
    allowed = None
    if statuses or institutions:
        allowed = services.catalogue.photo_ids_where(statuses=statuses, institutions=institutions)
    k = min(max(top_k * settings.photos_per_object, 50), max(services.index.size, 1))
    scores, ids = services.index.search(vectors, k, allowed_ids=allowed)
    refs = services.catalogue.photo_refs(int(i) for i in ids.reshape(-1) if i >= 0)
    ranked = rank_objects(scores, ids, {pid: ref.object_id for pid, ref in refs.items()})
    hits = []
    for rank, (object_id, best) in enumerate(ranked[:top_k], start=1):
        ref = refs[best.photo_id]
        hits.append(
            SearchHit(
                rank=rank,
                object_id=object_id,
                institution=ref.institution,
                status=ref.status,
                title=ref.title,
                maker=ref.maker,
                score=round(best.score, 4),
                is_match=best.score >= settings.threshold,
                photo_id=best.photo_id,
                photo_view=ref.view,
                thumbnail_key=ref.thumbnail_key,
                loss_date=ref.loss_date,
                loss_reference=ref.loss_reference,
            )
        )
    return SearchResult(
        query_sha256=query.sha256,
        threshold=settings.threshold,
        model=f"{services.embedder.name} {services.embedder.version}",
        objects_searched=services.catalogue.count_objects_where(
            statuses=statuses, institutions=institutions
        ),
        statuses=list(statuses) if statuses else None,
        institutions=list(institutions) if institutions else None,
        hits=hits,
    )
