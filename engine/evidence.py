"""The evidence picture of a match: query and catalogue photo side by side, the inlier
correspondences drawn and the matched region outlined, captioned for a case file."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from engine.search.local import unique_candidate_points, vote
from engine.services import Services
from kernel.errors import NotFound
from kernel.schemas import SearchHit, confidence_text
from models.evidence import draw_evidence, encode_png
from models.images import DecodedImage, decode_image
from models.local_features import (
    DEFAULT_MAX_KEYPOINTS,
    FEATURES_KEY,
    LocalFeatures,
    extract_local_features,
    extract_query_features,
)
from models.verification import Verification, fit_instances, verify

__all__ = [
    "QUERY_PREFIX",
    "best_photo_evidence_png",
    "evidence_png",
    "photo_evidence_png",
    "query_blob_key",
    "verify_as_searched",
]

#: Blob-store prefix of the query photos kept as evidence (content-addressed).
QUERY_PREFIX = "queries"


def query_blob_key(sha256: str) -> str:
    return f"{QUERY_PREFIX}/{sha256[:2]}/{sha256}"


def evidence_png(
    services: Services, query: DecodedImage, hit: SearchHit, *, query_name: str = ""
) -> bytes:
    """Re-run the verification of ``hit`` and draw it (a PNG)."""
    evidence = (
        f"confidence {confidence_text(hit.confidence)}"
        if hit.is_match and hit.confidence is not None
        else f"similarity {hit.similarity:.2f}, not verified"
    )
    return photo_evidence_png(services, query, hit.photo_id, caption=query_name, detail=evidence)


def photo_evidence_png(
    services: Services,
    query: DecodedImage,
    photo_id: int,
    *,
    caption: str = "",
    detail: str = "",
    translate: Callable[[str], str] | None = None,
) -> bytes:
    """Verify ``query`` against catalogue photo ``photo_id`` and draw the result (a PNG).

    ``caption`` names the query photo (its file name, or the search and case it was made
    in); without one the start of its SHA-256 does. The catalogue photo is named by its
    object id and view, the object by id, institution and title; ``detail`` (a confidence)
    follows the object. ``translate`` is handed to `draw_evidence` for the words.
    """
    refs = services.catalogue.photo_refs([photo_id])
    if photo_id not in refs:
        raise NotFound(f"catalogue photo {photo_id} does not exist")
    ref = refs[photo_id]
    candidate = decode_image(
        services.blobs.get(ref.blob_key),
        source=ref.blob_key,
        max_pixels=services.settings.max_image_pixels,
    )
    stored = services.catalogue.local_features([photo_id], FEATURES_KEY).get(photo_id)
    cand_features = (
        LocalFeatures.from_bytes(stored)
        if stored is not None
        else extract_local_features(candidate.to_array())
    )
    verification = verify_as_searched(services, query, photo_id, cand_features)
    view = ref.view or f"#{photo_id}"
    labels = (caption or f"sha256 {query.sha256[:12]}", f"{ref.object_id} · {view}")
    title = f" “{ref.title}”" if ref.title else ""
    object_label = f"{ref.object_id} ({ref.institution}){title}" + (f", {detail}" if detail else "")
    return encode_png(
        draw_evidence(
            query.to_array(),
            candidate.to_array(),
            verification,
            labels=labels,
            candidate_size=(cand_features.width, cand_features.height),
            object_label=object_label,
            translate=translate,
        )
    )


def verify_as_searched(
    services: Services, query: DecodedImage, photo_id: int, candidate: LocalFeatures
) -> Verification:
    """The verification the search made: vote and verify restricted to this photo (what
    finds a small object in a cluttered lot), else the pairwise attempt with mirroring; the
    one with more inliers."""
    features = extract_query_features(query.to_array())
    fits = []
    pairs = vote(services.descriptors, features, allowed={photo_id}).get(photo_id)
    if pairs is not None:
        fits = fit_instances(features, candidate, unique_candidate_points(pairs, len(candidate)))
    strongest = features.subset(np.arange(min(len(features), DEFAULT_MAX_KEYPOINTS)))
    fits.append(verify(strongest, candidate))
    return max(fits, key=lambda v: v.inliers)


def best_photo_evidence_png(
    services: Services,
    query: DecodedImage,
    photo_ids: Sequence[int],
    *,
    caption: str = "",
    detail: str = "",
    translate: Callable[[str], str] | None = None,
) -> bytes:
    """The evidence picture against whichever of ``photo_ids`` (one object's photos) the
    query verifies best: a listing check keeps which object matched, not which photo."""
    if not photo_ids:
        raise NotFound("the object has no photos")
    best, most = photo_ids[0], -1
    refs = services.catalogue.photo_refs(photo_ids)
    stored = services.catalogue.local_features(list(refs), FEATURES_KEY)
    for photo_id in refs:
        if photo_id not in stored:
            continue
        inliers = verify_as_searched(
            services, query, photo_id, LocalFeatures.from_bytes(stored[photo_id])
        ).inliers
        if inliers > most:
            best, most = photo_id, inliers
    return photo_evidence_png(
        services, query, best, caption=caption, detail=detail, translate=translate
    )
