"""`search`: the stages run in order, in one of two modes.

Verified (the default): candidates -> verify -> decide, with the query's local features
extracted while the CNN embeds it; matches are decided on the confidence. Global only
(``verify=False``): candidates ranked by similarity, matches decided on the similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from engine.search.candidates import (
    Candidate,
    embed_query,
    look_up,
    look_up_regions,
    merge_region_candidates,
    pool_candidates,
    unexplained_regions,
)
from engine.search.decide import (
    OwnedRegion,
    assign_regions,
    decide,
    decision_rules,
    decision_threshold,
    rank_by_decision,
    rank_by_similarity,
)
from engine.search.local import merge_instances, vote_and_verify
from engine.search.verify import rescore_matched_regions, verify_pairs
from engine.services import Services
from kernel.enums import Decision, ObjectStatus, ThresholdOn
from kernel.schemas import RegionMatch, SearchHit, SearchResult
from kernel.settings import MatchSettings
from models.embedders import Embedder
from models.images import DecodedImage
from models.local_features import DEFAULT_MAX_KEYPOINTS, extract_query_features
from models.regions import Box
from storage.catalogue import Catalogue, PhotoRef
from storage.descriptors.base import DescriptorIndex
from storage.index.base import VectorIndex
from storage.index.filters import IdFilter

__all__ = ["QUERY_FEATURES", "search", "whole_vector_key"]

#: Names under which a verified search leaves on the query (`DecodedImage.derived`) the
#: query-grade keypoints it extracted and the whole photo's CNN vector.
QUERY_FEATURES = "query_features"


def whole_vector_key(embedder: Embedder) -> str:
    return f"whole_vector {embedder.name} {embedder.version}"


@dataclass
class _Ranked:
    """What a mode hands back: candidates best first, the refs of their photos, and the
    candidates that own a region of the query."""

    candidates: list[Candidate]
    refs: dict[int, PhotoRef]
    owners: list[OwnedRegion]
    query_keypoints: int | None = None


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
    catalogue, index, embedder = services.catalogue, services.index, services.embedder
    verify = settings.verify if verify is None else verify
    # Cached per filter and catalogue version: a repeated search does no SQL scan and builds
    # no selector (`engine.search.filters`).
    scope = services.filters.scope(catalogue, statuses=statuses, institutions=institutions)
    allowed = scope.allowed
    size = max(index.size, 1)
    k = min(max(top_k, settings.verify_top) * settings.photos_per_object, size)
    threshold, threshold_on = decision_threshold(settings, verify=verify)
    if verify:
        ranked = _verified(
            query,
            embedder=embedder,
            index=index,
            descriptors=services.descriptors if settings.local_retrieval else None,
            catalogue=catalogue,
            settings=settings,
            k=k,
            top=max(top_k, settings.verify_top),
            allowed=allowed,
        )
    else:
        ranked = _global_only(
            query,
            embedder=embedder,
            index=index,
            catalogue=catalogue,
            crops=settings.query_crops,
            k=k,
            top=top_k,
            allowed=allowed,
        )
    hits = [
        _hit(rank, cand, ranked.refs[cand.photo_id], threshold=threshold, on=threshold_on)
        for rank, cand in enumerate(ranked.candidates[:top_k], start=1)
    ]
    return SearchResult(
        query_sha256=query.sha256,
        query_size=query.size,
        threshold_on=threshold_on,
        threshold=threshold,
        verification=verify,
        model=f"{embedder.name} {embedder.version}",
        index_version=index.meta.version,
        query_keypoints=ranked.query_keypoints,
        objects_searched=scope.objects,
        photos_searched=index.size if allowed is None else len(allowed),
        statuses=list(statuses) if statuses else None,
        institutions=list(institutions) if institutions else None,
        hits=hits,
        regions=[
            RegionMatch(
                box=_pixels(o.box),
                object_id=o.owner.object_id,
                confidence=round(o.owner.confidence, 4),
                inliers=o.inliers,
                also=list(o.also),
            )
            for o in ranked.owners
        ],
    )


def _global_only(
    query: DecodedImage,
    *,
    embedder: Embedder,
    index: VectorIndex,
    catalogue: Catalogue,
    crops: Sequence[float],
    k: int,
    top: int,
    allowed: IdFilter | None,
) -> _Ranked:
    vectors = embed_query(embedder, query.image, crops)
    whole, refs = look_up(index, catalogue, vectors, k=k, allowed=allowed)
    candidates = pool_candidates(whole=whole, regions=[], top=top, refs=refs)
    rank_by_similarity(candidates)
    return _Ranked(candidates=candidates, refs=refs, owners=[])


def _verified(
    query: DecodedImage,
    *,
    embedder: Embedder,
    index: VectorIndex,
    descriptors: DescriptorIndex | None,
    catalogue: Catalogue,
    settings: MatchSettings,
    k: int,
    top: int,
    allowed: IdFilter | None,
) -> _Ranked:
    """The CNN's candidates verified pairwise, fused with the copies that local-descriptor
    retrieval verified (every object of a seizure photo, however small), then decided.

    Without a descriptor index the older route finds further objects: regions of the photo
    that no verified match explains are searched with the CNN and verified too.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="artmatch-sift") as worker:
        # OpenCV extracts the query's keypoints while the CNN embeds it.
        features_job = worker.submit(extract_query_features, query.to_array())
        vectors = embed_query(embedder, query.image, settings.query_crops)
        features = features_job.result()
    query.derived[QUERY_FEATURES] = features
    query.derived[whole_vector_key(embedder)] = vectors[0]
    # Pairwise verification needs no more than a catalogue photo's share of keypoints: the
    # strongest of the query's (they come strongest first).
    strongest = features.subset(np.arange(min(len(features), DEFAULT_MAX_KEYPOINTS)))
    whole, refs = look_up(index, catalogue, vectors, k=k, allowed=allowed)

    candidates = pool_candidates(whole=whole, regions=[], top=top, refs=refs)
    if descriptors is not None:
        # The descriptor search itself runs over the whole catalogue, filtered or not: its
        # ratio test must see every photo (a filtered-out look-alike contests a match). It is
        # no second scan of the filter: ``allowed`` masks its votes (`local.vote`).
        instances = vote_and_verify(descriptors, catalogue, features, allowed=allowed)
        candidates, refs = merge_instances(
            candidates,
            instances,
            refs=refs,
            photos=catalogue,
            vectors=catalogue,
            query_vectors=vectors,
            model=(embedder.name, embedder.version),
        )
        # The CNN's candidates that retrieval did not verify get a pairwise attempt (a
        # mirrored photo, an object whose keypoints were outvoted).
        verify_pairs(strongest, catalogue, [c for c in candidates if c.verification is None])
    else:
        verify_pairs(strongest, catalogue, candidates)
        boxes = unexplained_regions(
            query.to_array(), max_regions=settings.max_regions, candidates=candidates
        )
        if boxes:
            regions, refs = look_up_regions(
                embedder, index, catalogue, query.image, boxes, k=k, allowed=allowed, refs=refs
            )
            pooled = pool_candidates(whole=whole, regions=regions, top=top, refs=refs)
            kept, new = merge_region_candidates(candidates, pooled)
            verify_pairs(strongest, catalogue, new, mirror_top=0)
            candidates = kept + new
    # A verified object's fair global evidence is the similarity of its own region.
    rescore_matched_regions(embedder, catalogue, query.image, candidates)
    decide(candidates, decision_rules(settings), query_keypoints=len(strongest))
    rank_by_decision(candidates)
    return _Ranked(
        candidates=candidates,
        refs=refs,
        owners=assign_regions(candidates),
        query_keypoints=len(strongest),
    )


def _hit(
    rank: int, cand: Candidate, ref: PhotoRef, *, threshold: float, on: ThresholdOn
) -> SearchHit:
    verified_mode = on is ThresholdOn.CONFIDENCE
    box = cand.verification.query_box if cand.verified and cand.verification else None
    if verified_mode:
        decision = cand.decision
    else:
        # The global stage alone proves nothing: at most a lead.
        decision = Decision.LEAD if cand.similarity >= threshold else Decision.NONE
    return SearchHit(
        rank=rank,
        object_id=cand.object_id,
        institution=ref.institution,
        status=ref.status,
        title=ref.title,
        maker=ref.maker,
        similarity=round(cand.similarity, 4),
        confidence=round(cand.confidence, 4) if verified_mode else None,
        inliers=cand.inliers if cand.verification is not None else None,
        photo_keypoints=cand.photo_keypoints,
        verified=cand.verified,
        region=_pixels(box) if box else None,
        decision=decision,
        is_match=decision is Decision.MATCH,
        photo_id=cand.photo_id,
        photo_view=ref.view,
        thumbnail_key=ref.thumbnail_key,
        loss_date=ref.loss_date,
        loss_reference=ref.loss_reference,
    )


def _pixels(box: Box) -> tuple[int, int, int, int]:
    return (int(box.x0), int(box.y0), int(box.x1), int(box.y1))
