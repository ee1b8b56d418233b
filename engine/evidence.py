"""The evidence picture of a match: query and catalogue photo side by side, the inlier
correspondences drawn and the matched region outlined, captioned for a case file."""

from __future__ import annotations

from engine.services import Services
from kernel.errors import NotFound
from kernel.schemas import SearchHit
from models.evidence import draw_evidence, encode_png
from models.images import DecodedImage, decode_image
from models.local_features import FEATURES_KEY, LocalFeatures, extract_local_features
from models.verification import verify

__all__ = ["QUERY_PREFIX", "evidence_png", "photo_evidence_png", "query_blob_key"]

#: Blob-store prefix of the query photos kept as evidence (content-addressed).
QUERY_PREFIX = "queries"


def query_blob_key(sha256: str) -> str:
    return f"{QUERY_PREFIX}/{sha256[:2]}/{sha256}"


def evidence_png(services: Services, query: DecodedImage, hit: SearchHit) -> bytes:
    """Re-run the verification of ``hit`` and draw it (a PNG)."""
    evidence = (
        f"p={hit.confidence:.2f}"
        if hit.confidence is not None
        else f"similarity={hit.similarity:.2f}"
    )
    caption = f"{hit.object_id} ({hit.institution}), {evidence}"
    return photo_evidence_png(services, query, hit.photo_id, caption=caption)


def photo_evidence_png(
    services: Services, query: DecodedImage, photo_id: int, *, caption: str = ""
) -> bytes:
    """Verify ``query`` against catalogue photo ``photo_id`` and draw the result (a PNG)."""
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
    verification = verify(extract_local_features(query.to_array()), cand_features)
    labels = (
        f"query {query.sha256[:12]}",
        f"{caption or ref.object_id} - {verification.inliers} inliers",
    )
    return encode_png(
        draw_evidence(query.to_array(), candidate.to_array(), verification, labels=labels)
    )
