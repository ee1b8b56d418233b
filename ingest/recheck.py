"""Retroactive re-checks: when an object is reported stolen or missing, every listing already
checked is searched again for it, from the listing photos' stored features.

A listing check keeps each photo's local features and CNN vector (`keep_listing_features`,
table ``listing_features``), so a re-check never reads or decodes a listing photo again: it
matches the object's stored catalogue features into each listing's stored features
(`models.verification.verify`, the pairwise stage of `engine.search`) and decides with the
same rules as a search (`engine.search.decide`): a match needs a verified homography, a
region of at least `MIN_REGION_PX` and the calibrated confidence; similarity alone is never a
match. A hit becomes a sighting of the object and, at most once per object and listing, an
alert (`storage.catalogue.alerts`).

Pairs are verified in a thread pool: OpenCV releases the GIL, so two cores do twice the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from engine.search import QUERY_FEATURES, whole_vector_key
from engine.search.candidates import Candidate
from engine.search.decide import DecisionRules, decide, decision_rules
from engine.services import Services
from kernel.enums import LOST_STATUSES, Decision
from kernel.errors import InvalidInput
from models.images import DecodedImage
from models.local_features import (
    DEFAULT_MAX_KEYPOINTS,
    FEATURES_KEY,
    LocalFeatures,
    extract_query_features,
)
from models.verification import verify
from storage.catalogue.alerts import AlertRecord, AlertStore, ListingFeatures, NewSighting

__all__ = [
    "Hit",
    "ListingDetails",
    "RecheckResult",
    "keep_listing_features",
    "listing_features",
    "record_hit",
    "recheck_object",
]

log = logging.getLogger(__name__)

#: Threads verifying pairs (OpenCV's matching and MAGSAC release the GIL).
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class ListingDetails:
    """A listing as alerts and sightings name it."""

    source: str
    listing_id: str
    image_sha256: str
    title: str | None = None
    url: str | None = None
    seller: str | None = None
    price: str | None = None
    listed_on: str | None = None


@dataclass(frozen=True)
class Hit:
    listing: ListingDetails
    confidence: float
    inliers: int
    similarity: float | None


@dataclass
class RecheckResult:
    object_id: str
    #: Checked listings searched (with stored features).
    listings: int = 0
    #: Checked listings that have no stored features (checked before they were kept).
    without_features: int = 0
    hits: list[Hit] = field(default_factory=list)
    new_alerts: list[AlertRecord] = field(default_factory=list)
    seconds: float = 0.0


def listing_features(services: Services, image: DecodedImage) -> tuple[bytes, np.ndarray]:
    """What a checked listing photo keeps for re-checks: its local features (serialised) and
    its CNN vector.

    The strongest `DEFAULT_MAX_KEYPOINTS` of the query-grade keypoints are kept: what the
    search's pairwise stage matches catalogue photos with, at a third of the bytes.
    """
    # What the listing's search computed, when it ran verified; else computed here.
    features = image.derived.get(QUERY_FEATURES)
    if features is None:
        features = extract_query_features(image.to_array())
    strongest = features.subset(np.arange(min(len(features), DEFAULT_MAX_KEYPOINTS)))
    vector = image.derived.get(whole_vector_key(services.embedder))
    if vector is None:
        vector = services.embedder.embed([image.image])[0]
    return strongest.to_bytes(), np.asarray(vector, np.float32)


def keep_listing_features(services: Services, image: DecodedImage, *, store: AlertStore) -> None:
    """Store a checked listing photo's `listing_features` under its SHA-256."""
    features, vector = listing_features(services, image)
    store.store_listing_features(
        image_sha256=image.sha256,
        features=features,
        method=FEATURES_KEY,
        model=f"{services.embedder.name} {services.embedder.version}",
        vector=vector,
    )


def record_hit(
    services: Services,
    store: AlertStore,
    *,
    object_id: str,
    hit: Hit,
    origin: str,
) -> AlertRecord | None:
    """A sighting of the object in the listing and, if the object is lost and this listing
    raised none before, a new alert (returned)."""
    listing = hit.listing
    store.record_sighting(
        NewSighting(
            object_id=object_id,
            source=listing.source,
            listing_id=listing.listing_id,
            image_sha256=listing.image_sha256,
            title=listing.title,
            url=listing.url,
            seller=listing.seller,
            price=listing.price,
            listed_on=listing.listed_on,
            confidence=hit.confidence,
            origin=origin,
        )
    )
    obj = services.catalogue.get_object(object_id)
    if obj.status not in LOST_STATUSES:
        return None  # seen, and kept in its history, but nobody is looking for it
    return store.raise_alert(
        object_id=object_id,
        institution=obj.institution,
        object_type=obj.object_type,
        object_status=obj.status.value,
        source=listing.source,
        listing_id=listing.listing_id,
        image_sha256=listing.image_sha256,
        listing_title=listing.title,
        url=listing.url,
        seller=listing.seller,
        price=listing.price,
        listed_on=listing.listed_on,
        confidence=hit.confidence,
        inliers=hit.inliers,
        origin=origin,
    )


def _object_photos(
    services: Services, object_id: str
) -> list[tuple[LocalFeatures, np.ndarray | None]]:
    refs = services.catalogue.photos_of(object_id)
    ids = [r.photo_id for r in refs]
    blobs = services.catalogue.local_features(ids, FEATURES_KEY)
    emb = services.embedder
    vectors = services.catalogue.photo_vectors(ids, emb.name, emb.version)
    return [(LocalFeatures.from_bytes(blobs[i]), vectors.get(i)) for i in ids if i in blobs]


def _decide_listing(
    listing: ListingFeatures,
    photos: Sequence[tuple[LocalFeatures, np.ndarray | None]],
    *,
    rules: DecisionRules,
    object_id: str,
) -> Hit | None:
    """The object's best-verified photo against one listing, decided as a search decides."""
    query = LocalFeatures.from_bytes(listing.features)
    if len(query) == 0:
        return None
    candidates = []
    for n, (features, vector) in enumerate(photos):
        similarity = (
            float(listing.vector @ vector)
            if listing.vector is not None and vector is not None
            else 0.0
        )
        fit = verify(query, features, try_mirror=True)
        candidates.append(
            Candidate(
                object_id=object_id,
                photo_id=n,
                similarity=similarity,
                inliers=fit.inliers if fit.model else 0,
                verification=fit,
                photo_keypoints=len(features),
            )
        )
    decide(candidates, rules, query_keypoints=len(query))
    matches = [c for c in candidates if c.decision is Decision.MATCH]
    if not matches:
        return None
    best = max(matches, key=lambda c: (c.confidence, c.inliers))
    return Hit(
        listing=ListingDetails(
            source=listing.source,
            listing_id=listing.listing_id,
            image_sha256=listing.image_sha256,
            title=listing.title,
            url=listing.url,
            seller=listing.seller,
            price=listing.price,
            listed_on=listing.listed_on,
        ),
        confidence=round(best.confidence, 4),
        inliers=best.inliers,
        similarity=round(best.similarity, 4) if listing.vector is not None else None,
    )


def recheck_object(
    services: Services,
    object_id: str,
    *,
    store: AlertStore | None = None,
    workers: int = DEFAULT_WORKERS,
    on_alert: Callable[[AlertRecord], None] | None = None,
) -> RecheckResult:
    """Search every checked listing again for ``object_id``; hits become sightings and new
    alerts (``on_alert`` is called with each new one)."""
    started = time.perf_counter()
    store = store or AlertStore(services.catalogue.engine)
    result = RecheckResult(object_id=object_id)
    photos = _object_photos(services, object_id)
    _, result.without_features = store.count_checked()
    if not photos:
        raise InvalidInput(f"object {object_id!r} has no photo with local features to look for")
    rules = decision_rules(services.settings.match)
    model = f"{services.embedder.name} {services.embedder.version}"
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="recheck") as pool:
        for batch in store.iter_checked_listings(model=model):
            result.listings += len(batch)
            found = pool.map(
                lambda item: _decide_listing(item, photos, rules=rules, object_id=object_id),
                batch,
            )
            for hit in found:
                if hit is None:
                    continue
                result.hits.append(hit)
                alert = record_hit(services, store, object_id=object_id, hit=hit, origin="recheck")
                if alert is not None:
                    result.new_alerts.append(alert)
                    if on_alert is not None:
                        on_alert(alert)
    result.seconds = time.perf_counter() - started
    log.info(
        "re-check of %s: %d listings in %.1f s, %d hits, %d new alerts",
        object_id,
        result.listings,
        result.seconds,
        len(result.hits),
        len(result.new_alerts),
    )
    return result
