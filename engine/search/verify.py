"""Second stage: verify candidates with local features and geometry.

Every candidate's best catalogue photo has its local features stored at ingest; they are
matched into the query's, and a geometric model (MAGSAC) keeps the consistent matches
(inliers) and locates the object in the query (its matched box). A verified candidate whose
matched box is a region of the query then gets the similarity of that region, since in a
photo of several objects the whole-photo descriptor mixes them all.

Inputs are what each step uses: the query's local features, a lookup of stored features
(`StoredFeatures`), and for the rescoring the embedder and a lookup of stored vectors
(`StoredVectors`); the catalogue is both lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
from PIL import Image

from engine.search.candidates import Candidate
from models.embedders import Embedder
from models.local_features import FEATURES_KEY, LocalFeatures
from models.verification import verify

__all__ = ["StoredFeatures", "StoredVectors", "rescore_matched_regions", "verify_pairs"]

#: Candidates (most similar first) for which a mirrored query is tried too.
_MIRROR_TOP = 3
#: A matched box at least this share of the query is the whole photo, not a region.
_WHOLE_FRACTION = 0.8


class StoredFeatures(Protocol):
    """Local features stored per catalogue photo (`Catalogue` is one)."""

    def local_features(self, photo_ids: Iterable[int], method: str) -> dict[int, bytes]: ...


class StoredVectors(Protocol):
    """Global descriptors stored per catalogue photo (`Catalogue` is one)."""

    def photo_vectors(
        self, photo_ids: Iterable[int], model: str, model_version: str
    ) -> dict[int, np.ndarray]: ...


def verify_pairs(
    query_features: LocalFeatures,
    stored: StoredFeatures,
    candidates: Sequence[Candidate],
    *,
    mirror_top: int = _MIRROR_TOP,
) -> None:
    """Match every candidate's stored local features into the query, in place.

    Mirror images are tried for the ``mirror_top`` most similar candidates only: the CNN
    descriptor is nearly mirror-invariant, so a mirrored photo of a catalogue object still
    ranks it high, and the extra attempt doubles the cost of every non-matching pair.
    """
    features = stored.local_features([c.photo_id for c in candidates], FEATURES_KEY)
    by_similarity = sorted(candidates, key=lambda c: -c.similarity)
    for position, cand in enumerate(by_similarity):
        data = features.get(cand.photo_id)
        if data is not None and len(query_features):
            features_of_photo = LocalFeatures.from_bytes(data)
            cand.photo_keypoints = len(features_of_photo)
            cand.verification = verify(
                query_features, features_of_photo, try_mirror=position < mirror_top
            )
            cand.inliers = cand.verification.inliers if cand.verification.model else 0


def rescore_matched_regions(
    embedder: Embedder,
    stored: StoredVectors,
    query: Image.Image,
    candidates: Sequence[Candidate],
) -> bool:
    """Give each verified candidate the similarity of its matched region, if higher; returns
    whether any was rescored.

    In a photo of several objects the whole-photo descriptor mixes them all; once geometry
    has located an object, the descriptor of that region is the fair global evidence. Only
    candidates still below the threshold are worth the extra embedding.
    """
    width, height = query.size
    todo = []
    for c in candidates:
        box = c.verification.query_box if c.verified and c.verification is not None else None
        if box is not None and 0 < box.area < _WHOLE_FRACTION * width * height:
            todo.append((c, box))
    if not todo:
        return False
    vectors = stored.photo_vectors([c.photo_id for c, _ in todo], embedder.name, embedder.version)
    embedded = embedder.embed([query.crop(box) for _, box in todo])
    for (cand, _), vec in zip(todo, embedded, strict=True):
        ref = vectors.get(cand.photo_id)
        if ref is not None:
            cand.similarity = max(cand.similarity, float(vec @ ref))
    return True
