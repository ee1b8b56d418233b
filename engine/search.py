"""Search: embed a query photo, find the nearest catalogue photos, verify, rank objects."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from engine.services import Services
from engine.verify import (
    Candidate,
    assign_regions,
    pool_candidates,
    query_regions,
    score_candidates,
    verify_pairs,
)
from kernel.enums import ObjectStatus, ThresholdOn
from kernel.schemas import RegionMatch, SearchHit, SearchResult
from kernel.settings import MatchSettings
from models.calibration import default_calibration
from models.embedders import Embedder
from models.images import DecodedImage
from models.local_features import LocalFeatures, extract_local_features
from models.regions import Box
from storage.catalogue import PhotoRef

__all__ = ["decision_threshold", "embed_query", "query_views", "search"]


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


def decision_threshold(
    settings: MatchSettings, *, verify: bool | None = None
) -> tuple[float, ThresholdOn]:
    """The threshold a search decides matches with, and the quantity it applies to;
    ``verify`` overrides the setting."""
    if settings.verify if verify is None else verify:
        threshold = settings.confidence_threshold or default_calibration().threshold
        return threshold, ThresholdOn.CONFIDENCE
    return settings.similarity_threshold, ThresholdOn.SIMILARITY


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

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artmatch-sift") as worker:
        # OpenCV extracts the query's keypoints while the CNN embeds it.
        features_job = worker.submit(extract_local_features, query.to_array()) if verify else None
        vectors = embed_query(services.embedder, query.image, settings.query_crops)
        features = features_job.result() if features_job else None
    whole = services.index.search(vectors, k, allowed_ids=allowed)
    refs = services.catalogue.photo_refs(int(i) for i in whole[1].ravel() if i >= 0)
    threshold, threshold_on = decision_threshold(settings, verify=verify)
    if verify:
        assert features is not None
        calibration = default_calibration()
        candidates = _verified_candidates(
            services,
            query,
            whole=whole,
            refs=refs,
            allowed=allowed,
            k=k,
            top=max(top_k, settings.verify_top),
            features=features,
        )
        background = None
        if allowed is not None:
            background = _background(services, vectors, exclude={c.object_id for c in candidates})
        score_candidates(
            services, query.image, candidates, calibration, threshold, background=background
        )
        candidates.sort(key=lambda c: (-c.confidence, -c.similarity))
        owners = assign_regions(candidates, threshold)
    else:
        candidates = list(
            pool_candidates(
                whole=whole,
                regions=[],
                top=top_k,
                photo_to_object={pid: ref.object_id for pid, ref in refs.items()},
            ).values()
        )
        candidates.sort(key=lambda c: -c.similarity)
        owners = []
    hits = [
        _hit(rank, cand, refs[cand.photo_id], threshold=threshold, threshold_on=threshold_on)
        for rank, cand in enumerate(candidates[:top_k], start=1)
    ]
    return SearchResult(
        query_sha256=query.sha256,
        query_size=query.size,
        threshold_on=threshold_on,
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
                confidence=round(o.confidence, 4),
                inliers=o.inliers,
            )
            for o in owners
            if o.region is not None
        ],
    )


def _verified_candidates(
    services: Services,
    query: DecodedImage,
    *,
    whole: tuple[np.ndarray, np.ndarray],
    refs: dict[int, PhotoRef],
    allowed: np.ndarray | None,
    k: int,
    top: int,
    features: LocalFeatures,
) -> list[Candidate]:
    """Candidates of the whole photo, verified; then those of the proposed regions that no
    verified match explains yet (the other objects of a multi-object photo), verified too.

    Searching only the unexplained regions keeps a photo of one object as cheap as possible:
    its one region is usually the verified match itself.
    """
    objects = {pid: ref.object_id for pid, ref in refs.items()}
    first = list(
        pool_candidates(whole=whole, regions=[], top=top, photo_to_object=objects).values()
    )
    verify_pairs(services, features, first)
    explained = [
        c.verification.query_box
        for c in first
        if c.verified and c.verification is not None and c.verification.query_box is not None
    ]
    boxes = [
        b
        for b in query_regions(query.to_array(), services.settings.match.max_regions)
        if not any(_covered(b, e) for e in explained)
    ]
    if not boxes:
        return first
    vectors = services.embedder.embed([query.image.crop(tuple(b)) for b in boxes])
    scores, ids = services.index.search(vectors, min(k, 20), allowed_ids=allowed)
    regions = [(scores[i : i + 1], ids[i : i + 1]) for i in range(len(boxes))]
    refs.update(
        services.catalogue.photo_refs({int(i) for i in ids.ravel() if i >= 0} - refs.keys())
    )
    objects = {pid: ref.object_id for pid, ref in refs.items()}
    done = {(c.object_id, c.photo_id): c for c in first}
    candidates, todo = [], []
    pooled = pool_candidates(whole=whole, regions=regions, top=top, photo_to_object=objects)
    for cand in pooled.values():
        earlier = done.get((cand.object_id, cand.photo_id))
        if earlier is not None:
            earlier.similarity = max(earlier.similarity, cand.similarity)
            candidates.append(earlier)
        else:
            todo.append(cand)
    verify_pairs(services, features, todo, mirror_top=0)
    return candidates + todo


def _background(services: Services, vectors: np.ndarray, *, exclude: set[str]) -> np.ndarray:
    """Best cosines of the nearest objects of the whole catalogue outside ``exclude``.

    A filtered search (only stolen objects, say) must not make a candidate look distinctive
    because its look-alikes were filtered out.
    """
    k = min(services.index.size, 50)
    if k == 0:
        return np.zeros(0)
    scores, ids = services.index.search(vectors, k)
    refs = services.catalogue.photo_refs(int(i) for i in ids.ravel() if i >= 0)
    best: dict[str, float] = {}
    for score, pid in zip(scores.ravel(), ids.ravel(), strict=True):
        ref = refs.get(int(pid))
        if ref is not None and ref.object_id not in exclude:
            best[ref.object_id] = max(best.get(ref.object_id, -1.0), float(score))
    return np.array(sorted(best.values(), reverse=True)[:5])


def _covered(box: Box, by: Box) -> bool:
    """Whether most of ``box`` lies inside ``by``."""
    ix = max(0, min(box.x1, by.x1) - max(box.x0, by.x0))
    iy = max(0, min(box.y1, by.y1) - max(box.y0, by.y0))
    return box.area > 0 and ix * iy > 0.5 * box.area


def _hit(
    rank: int, cand: Candidate, ref: PhotoRef, *, threshold: float, threshold_on: ThresholdOn
) -> SearchHit:
    verified_mode = threshold_on is ThresholdOn.CONFIDENCE
    decisive = cand.confidence if verified_mode else cand.similarity
    return SearchHit(
        rank=rank,
        object_id=cand.object_id,
        institution=ref.institution,
        status=ref.status,
        title=ref.title,
        maker=ref.maker,
        similarity=round(cand.similarity, 4),
        confidence=round(cand.confidence, 4) if verified_mode else None,
        margin=round(cand.margin, 4) if cand.verification is not None else None,
        inliers=cand.inliers if cand.verification is not None else None,
        verified=cand.verified,
        region=tuple(int(v) for v in cand.verification.query_box)  # type: ignore[arg-type]
        if cand.verified and cand.verification and cand.verification.query_box
        else None,
        is_match=decisive >= threshold,
        photo_id=cand.photo_id,
        photo_view=ref.view,
        thumbnail_key=ref.thumbnail_key,
        loss_date=ref.loss_date,
        loss_reference=ref.loss_reference,
    )
