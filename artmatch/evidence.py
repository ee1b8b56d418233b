"""The evidence picture of a match: query and catalogue photo side by side, the inlier
correspondences drawn and the matched region outlined, captioned for a case file."""

from __future__ import annotations

from artmatch.container import Services
from artmatch.errors import NotFound
from artmatch.schemas import SearchHit
from models.evidence import draw_evidence, encode_png
from models.images import DecodedImage, decode_image
from models.local_features import FEATURES_KEY, LocalFeatures, extract_local_features
from models.verification import verify

__all__ = ["evidence_png"]


def evidence_png(services: Services, query: DecodedImage, hit: SearchHit) -> bytes:
    """Re-run the verification of ``hit`` and draw it (a PNG)."""
    refs = services.catalogue.photo_refs([hit.photo_id])
    if hit.photo_id not in refs:
        raise NotFound(f"catalogue photo {hit.photo_id} no longer exists")
    ref = refs[hit.photo_id]
    candidate = decode_image(
        services.blobs.get(ref.blob_key),
        source=ref.blob_key,
        max_pixels=services.settings.max_image_pixels,
    )
    stored = services.catalogue.local_features([hit.photo_id], FEATURES_KEY).get(hit.photo_id)
    cand_features = (
        LocalFeatures.from_bytes(stored)
        if stored is not None
        else extract_local_features(candidate.to_array())
    )
    verification = verify(extract_local_features(query.to_array()), cand_features)
    labels = (
        f"query {query.sha256[:12]}",
        f"{hit.object_id} ({hit.institution}) - {verification.inliers} inliers, "
        f"p={hit.confidence:.2f}",
    )
    return encode_png(
        draw_evidence(query.to_array(), candidate.to_array(), verification, labels=labels)
    )
