"""First stage: the catalogue objects a query photo may show, by global similarity.

The whole photo and its centre crops are embedded and looked up in the vector index; the
nearest photos are pooled into one candidate per object (its most similar photo). Regions of
the photo that no verified candidate explains (the other objects of a multi-object photo) are
looked up the same way, and their best few objects join the pool.

Inputs are what each step uses: the embedder, the index, and a lookup of catalogue photos
(`PhotoRefs`; the catalogue is one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from kernel.enums import Decision
from models.embedders import Embedder
from models.regions import Box, propose_regions
from models.verification import Verification
from storage.catalogue import PhotoRef
from storage.index.base import VectorIndex
from storage.index.filters import IdFilter

__all__ = [
    "Candidate",
    "Neighbours",
    "PhotoRefs",
    "embed_query",
    "look_up",
    "look_up_regions",
    "merge_region_candidates",
    "pool_candidates",
    "query_regions",
    "query_views",
    "unexplained_regions",
]

#: ``(similarities, photo ids)`` of a vector-index search, each ``(queries, k)``.
Neighbours = tuple[np.ndarray, np.ndarray]

#: Candidates taken from each proposed region's own search.
_PER_REGION = 3
#: Nearest photos fetched per region (a region brings only its few best objects).
_REGION_K = 20


class PhotoRefs(Protocol):
    """What the search needs to know of catalogue photos (`Catalogue` is one)."""

    def photo_refs(self, photo_ids: Iterable[int]) -> dict[int, PhotoRef]: ...


@dataclass
class Candidate:
    """One catalogue object, through its most similar photo, and the evidence gathered on it
    by the stages (verification fills ``inliers``/``verification``, the decision the rest)."""

    object_id: str
    photo_id: int
    #: Cosine of the global descriptors (best query view against the object's best photo).
    similarity: float
    inliers: int = 0
    verification: Verification | None = None
    #: One minus the chance of its inliers between unrelated photos; 0 until decided.
    confidence: float = 0.0
    #: The region of the query this object owns (multi-object photos).
    region: Box | None = None
    #: Further verified copies of the object in the query (two prints of one icon, say).
    copies: list[Verification] = field(default_factory=list)
    #: Keypoints of the verified catalogue photo: zero inliers mean something only when
    #: both photos had plenty to match (`engine.search.decide`).
    photo_keypoints: int | None = None
    #: What the search says about it (`engine.search.decide`).
    decision: Decision = Decision.NONE

    @property
    def verified(self) -> bool:
        return self.verification is not None and self.verification.is_match


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


def look_up(
    index: VectorIndex,
    photos: PhotoRefs,
    vectors: np.ndarray,
    *,
    k: int,
    allowed: IdFilter | np.ndarray | None,
) -> tuple[Neighbours, dict[int, PhotoRef]]:
    """The ``k`` nearest photos of each query view, and the catalogue refs of them all."""
    whole = index.search(vectors, k, allowed_ids=allowed)
    refs = photos.photo_refs(int(i) for i in whole[1].ravel() if i >= 0)
    return whole, refs


def _best_per_object(
    scores: np.ndarray, ids: np.ndarray, photo_to_object: dict[int, str]
) -> dict[str, Candidate]:
    best: dict[str, Candidate] = {}
    for score, pid in zip(scores.reshape(-1), ids.reshape(-1), strict=True):
        obj = photo_to_object.get(int(pid)) if pid >= 0 else None
        if obj is not None and (obj not in best or score > best[obj].similarity):
            best[obj] = Candidate(object_id=obj, photo_id=int(pid), similarity=float(score))
    return best


def pool_candidates(
    *,
    whole: Neighbours,
    regions: Sequence[Neighbours],
    top: int,
    refs: dict[int, PhotoRef],
) -> list[Candidate]:
    """Top candidates of the whole photo plus the top few of each region, each object with
    its best similarity; the whole photo's first, most similar first."""
    photo_to_object = {pid: ref.object_id for pid, ref in refs.items()}
    pool = dict(
        sorted(_best_per_object(*whole, photo_to_object).items(), key=lambda kv: -kv[1].similarity)[
            :top
        ]
    )
    for scores, ids in regions:
        ranked = sorted(
            _best_per_object(scores, ids, photo_to_object).values(), key=lambda c: -c.similarity
        )
        for cand in ranked[:_PER_REGION]:
            if cand.object_id not in pool or cand.similarity > pool[cand.object_id].similarity:
                pool[cand.object_id] = cand
    return list(pool.values())


def query_regions(image_rgb: np.ndarray, max_regions: int) -> list[Box]:
    """Proposed object regions, without the whole photo (which is searched anyway)."""
    if max_regions <= 0:
        return []
    h, w = image_rgb.shape[:2]
    return [
        b
        for b in propose_regions(image_rgb, max_regions=max_regions + 1, include_whole=False)
        if (b.x1 - b.x0) * (b.y1 - b.y0) < 0.9 * w * h
    ][:max_regions]


def unexplained_regions(
    image_rgb: np.ndarray, *, max_regions: int, candidates: Sequence[Candidate]
) -> list[Box]:
    """Proposed regions that the boxes of the verified ``candidates`` do not already cover.

    Searching only these keeps a photo of one object as cheap as possible: its one region is
    usually the verified match itself.
    """
    explained = [
        c.verification.query_box
        for c in candidates
        if c.verified and c.verification is not None and c.verification.query_box is not None
    ]
    return [
        b
        for b in query_regions(image_rgb, max_regions)
        if not any(b.share_inside(e) > 0.5 for e in explained)
    ]


def look_up_regions(
    embedder: Embedder,
    index: VectorIndex,
    photos: PhotoRefs,
    image: Image.Image,
    boxes: Sequence[Box],
    *,
    k: int,
    allowed: IdFilter | np.ndarray | None,
    refs: dict[int, PhotoRef],
) -> tuple[list[Neighbours], dict[int, PhotoRef]]:
    """The nearest photos of each region of ``image``, and ``refs`` completed with theirs."""
    vectors = embedder.embed([image.crop(b) for b in boxes])
    scores, ids = index.search(vectors, min(k, _REGION_K), allowed_ids=allowed)
    regions = [(scores[i : i + 1], ids[i : i + 1]) for i in range(len(boxes))]
    new = photos.photo_refs({int(i) for i in ids.ravel() if i >= 0} - refs.keys())
    return regions, refs | new


def merge_region_candidates(
    earlier: Sequence[Candidate], pooled: Sequence[Candidate]
) -> tuple[list[Candidate], list[Candidate]]:
    """Split a pool that took in the regions into the ``earlier`` candidates it kept (their
    similarity raised to the region's where higher; their verification stands) and the new
    ones, still to verify."""
    done = {(c.object_id, c.photo_id): c for c in earlier}
    kept, new = [], []
    for cand in pooled:
        before = done.get((cand.object_id, cand.photo_id))
        if before is not None:
            before.similarity = max(before.similarity, cand.similarity)
            kept.append(before)
        else:
            new.append(cand)
    return kept, new
