"""The content of a match report (or, when nothing matched, a due-diligence receipt) for one
or more logged searches: the facts that get signed, and the pictures shown beside them.

The facts are taken from the search log's record of each search (what was searched and what
came back at that moment, `storage.catalogue.search_log`), the catalogue records as they
stand now (status, loss date and reference), and the query photo kept as evidence. Pictures
are not in the facts; their SHA-256 is, so the signature covers them too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.evidence import photo_evidence_png, query_blob_key
from engine.services import Services
from kernel import __version__
from kernel.errors import ArtmatchError, NotFound
from kernel.i18n import translator
from kernel.schemas import OBJECT_ID_FIELDS, confidence_text
from models.images import decode_image, make_thumbnail
from storage.catalogue.search_log import SearchLog, SearchLogRecord, StoredHit

__all__ = ["MATCH_REPORT", "RECEIPT", "Picture", "ReportContent", "build_report"]

MATCH_REPORT = "match report"
#: A search that found nothing is worth something to a dealer or museum: proof of the
#: coverage searched at that moment.
RECEIPT = "due-diligence receipt"

#: Hits a report shows: matches and leads; a "none" hit is noise, not a finding.
_SHOWN = ("match", "lead")


@dataclass(frozen=True)
class Picture:
    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64," + base64.b64encode(self.data).decode()


@dataclass
class ReportContent:
    #: JSON-native facts (what gets signed).
    facts: dict[str, Any]
    #: Pictures by name, each named with its SHA-256 in the facts.
    pictures: dict[str, Picture] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.facts["kind"])


def build_report(
    services: Services,
    search_log: SearchLog,
    search_ids: Sequence[int],
    *,
    generated_by: str,
    title: str | None = None,
    language: str | None = None,
) -> ReportContent:
    """The report of ``search_ids`` (one search, or a case's searches), written in
    ``language`` (`kernel.i18n.LOCALES`; English when None); the caller has checked that
    ``generated_by`` may read each of them."""
    if not search_ids:
        raise NotFound("a report needs at least one search")
    pictures: dict[str, Picture] = {}
    searches = [
        _search_facts(services, search_log, search_id, pictures) for search_id in search_ids
    ]
    matched = any(s["outcome"] == "match" for s in searches)
    facts = {
        "kind": MATCH_REPORT if matched else RECEIPT,
        "title": title,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "generated_by": generated_by,
        "service_version": __version__,
        # Signed with the rest: which language the visible text is in.
        "language": translator(language).locale,
        "searches": searches,
    }
    return ReportContent(facts=facts, pictures=pictures)


def _search_facts(
    services: Services, search_log: SearchLog, search_id: int, pictures: dict[str, Picture]
) -> dict[str, Any]:
    logged = search_log.get_search(search_id)
    record = search_log.search_record(search_id)
    query = _query(services, logged)
    prefix = f"search-{search_id}"
    if query is not None:
        pictures[f"{prefix}-query"] = Picture(
            "image/jpeg", make_thumbnail(query.image, max_side=900, quality=88)
        )
    hits = [h for h in (record.hits if record else []) if h.decision in _SHOWN]
    hit_facts = []
    for hit in hits:
        name = f"{prefix}-evidence-{hit.rank}"
        if query is not None:
            try:
                png = photo_evidence_png(
                    services, query, hit.photo_id, caption=f"search {search_id}"
                )
                pictures[name] = Picture("image/png", png)
            except NotFound:
                pass  # the catalogue photo was deleted since: the record still stands
        hit_facts.append(_hit_facts(services, hit, pictures.get(name), name))
    coverage = record.coverage if record else None
    return {
        "search_id": logged.id,
        "searched_at": logged.created_at.isoformat(timespec="seconds"),
        "searched_by": logged.username,
        "case_reference": logged.case_reference,
        "query_sha256": logged.query_sha256,
        "query_picture": f"{prefix}-query" if query is not None else None,
        "query_picture_sha256": pictures[f"{prefix}-query"].sha256 if query else None,
        "outcome": "match" if any(h["decision"] == "match" for h in hit_facts) else "no match",
        "recorded": record is not None,
        "coverage": {
            "statuses": coverage.statuses,
            "institutions": coverage.institutions,
            "objects_searched": coverage.objects_searched,
            "photos_searched": coverage.photos_searched,
            "index_version": coverage.index_version,
            "model": coverage.model,
            "matcher": coverage.matcher,
            "service_version": coverage.service_version,
            "verification": coverage.verification,
            "threshold": coverage.threshold,
            "threshold_on": coverage.threshold_on,
            "query_size": list(coverage.query_size),
        }
        if coverage
        else None,
        "filters": logged.filters,
        "hits": hit_facts,
    }


def _query(services: Services, logged: SearchLogRecord):  # type: ignore[no-untyped-def]
    """The query photo kept as evidence, or None once retention removed it."""
    try:
        data = services.blobs.get(query_blob_key(logged.query_sha256))
    except (ArtmatchError, OSError, KeyError):
        return None
    return decode_image(
        data, source=f"search {logged.id}", max_pixels=services.settings.max_image_pixels
    )


def _hit_facts(
    services: Services, hit: StoredHit, evidence: Picture | None, name: str
) -> dict[str, Any]:
    try:
        obj = services.catalogue.get_object(hit.object_id)
        record: dict[str, Any] | None = {
            "object_id": obj.object_id,
            "institution": obj.institution,
            "status": str(obj.status),
            "loss_date": obj.loss_date.isoformat() if obj.loss_date else None,
            "loss_reference": obj.loss_reference,
            **{f: getattr(obj, f) for f in OBJECT_ID_FIELDS if getattr(obj, f) is not None},
        }
    except NotFound:
        record = None
    return {
        "rank": hit.rank,
        "object_id": hit.object_id,
        "institution": hit.institution,
        "photo_id": hit.photo_id,
        "decision": hit.decision,
        "similarity": round(hit.similarity, 4),
        "confidence": hit.confidence,
        "inliers": hit.inliers,
        "region": list(hit.region) if hit.region else None,
        "threshold": hit.threshold,
        "threshold_on": hit.threshold_on,
        "how_decided": _how_decided(hit),
        "record": record,
        "evidence_picture": name if evidence else None,
        "evidence_sha256": evidence.sha256 if evidence else None,
    }


def _how_decided(hit: StoredHit) -> str:
    if hit.threshold_on == "confidence":
        if hit.confidence is None:
            return "not verified: no confidence"
        relation = ">=" if hit.confidence >= hit.threshold else "<"
        return (
            f"{hit.decision}: confidence {confidence_text(hit.confidence)} {relation} "
            f"threshold {hit.threshold} from {hit.inliers or 0} geometrically consistent "
            f"matching points (inliers); similarity {hit.similarity:.4f}"
        )
    relation = ">=" if hit.similarity >= hit.threshold else "<"
    return (
        f"{hit.decision}: similarity {hit.similarity:.4f} {relation} threshold "
        f"{hit.threshold} (global descriptors only, no geometric verification)"
    )
