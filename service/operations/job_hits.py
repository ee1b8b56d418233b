"""What the batch-check page shows of each hit: the listing photo and the catalogue photo as
thumbnails, the confidence, and the evidence picture of the listing against the object. Read
from the job's JSON report and its manifest folder; a job is seen by whom `service.policy`
lets read it (`service.operations.jobs`), and nobody else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool

from engine.evidence import best_photo_evidence_png
from engine.services import Services
from ingest.listings import read_listing_photo
from kernel.errors import ArtmatchError, InvalidImage, NotFound
from kernel.i18n import Translator
from kernel.i18n import translator as translator_of
from models.images import decode_image, make_thumbnail
from service.deps import Principal
from service.operations.jobs import get_job, report_path
from service.operations.links import object_url, photo_thumbnail_url
from service.policy import Action
from service.runtime import Runtime

__all__ = ["HitRow", "hit_count", "hit_rows", "listing_evidence", "listing_thumbnail"]


@dataclass(frozen=True)
class HitRow:
    """One row of the hits table: one (listing, matching object)."""

    listing_id: str
    listing_title: str | None
    url: str | None
    object_id: str
    object_url: str
    title: str | None
    status: str
    confidence: float | None
    similarity: float | None
    listing_photo_url: str
    catalogue_photo_url: str | None
    evidence_url: str


def _report(rt: Runtime, principal: Principal, job_id: str) -> dict[str, Any]:
    path = report_path(rt, principal, job_id, "json")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _query(job_id: str, name: str, image: str, object_id: str) -> str:
    params = {"image": image} | ({"object_id": object_id} if object_id else {})
    return f"/api/v1/jobs/{job_id}/{name}?" + urlencode(params)


def hit_count(rt: Runtime, principal: Principal, job_id: str) -> int | None:
    """The number of rows of a finished job's hits table (None while it has no report). Not
    the job record's ``hits``: that counts listings with a match checked by this run, and a
    listing checked before (skipped) or matching two objects would make the two disagree."""
    try:
        return len(_report(rt, principal, job_id)["hits"])
    except NotFound:
        return None


def hit_rows(rt: Runtime, principal: Principal, job_id: str) -> list[HitRow]:
    """The rows of a finished job's hits table (every row of its report, so the count the
    page shows is the table's)."""
    rows = []
    may_read = principal.may(Action.READ_OBJECTS)
    first_photo: dict[str, int | None] = {}
    for hit in _report(rt, principal, job_id)["hits"]:
        object_id = hit["object_id"]
        if may_read and object_id not in first_photo:
            photos = rt.queries.photos_of(object_id) if _exists(rt, object_id) else []
            first_photo[object_id] = photos[0].id if photos else None
        photo = first_photo.get(object_id)
        rows.append(
            HitRow(
                listing_id=hit["listing_id"],
                listing_title=hit.get("listing_title"),
                url=hit.get("url"),
                object_id=object_id,
                object_url=object_url(object_id),
                title=hit.get("title_of_object"),
                status=hit["status"],
                confidence=hit.get("confidence"),
                similarity=hit.get("similarity"),
                listing_photo_url=_query(job_id, "listing-photo", hit["image"], ""),
                catalogue_photo_url=photo_thumbnail_url(photo) if photo is not None else None,
                evidence_url=_query(job_id, "evidence", hit["image"], object_id),
            )
        )
    return rows


def _exists(rt: Runtime, object_id: str) -> bool:
    try:
        rt.queries.object_institution(object_id)
    except NotFound:
        return False
    return True


def _listing_photo(
    rt: Runtime, principal: Principal, job_id: str, image: str, object_id: str | None
) -> tuple[str, bytes]:
    """The bytes of a listing photo that the job's report names among its hits (with
    ``object_id``: a hit of that object); anything else is not found."""
    get_job(rt, principal, job_id)  # another's job does not exist for the caller
    manifest = Path(rt.jobs.get_job(job_id).manifest)
    hits = _report(rt, principal, job_id)["hits"]
    named = [
        h
        for h in hits
        if h["image"] == image and (object_id is None or h["object_id"] == object_id)
    ]
    if not named:
        raise NotFound(f"job {job_id} has no hit with the photo {image!r}")
    try:
        data = read_listing_photo(manifest.parent, image, max_bytes=rt.settings.max_upload_bytes)
    except ArtmatchError:
        raise
    except Exception:  # unreadable, moved or pruned since, too large: its own error types
        raise NotFound(f"the listing photo {image!r} is no longer readable") from None
    return named[0]["listing_id"], data


async def listing_thumbnail(rt: Runtime, principal: Principal, job_id: str, image: str) -> bytes:
    def work() -> bytes:
        _, data = _listing_photo(rt, principal, job_id, image, None)
        decoded = decode_image(data, source=image, max_pixels=rt.settings.max_image_pixels)
        return make_thumbnail(decoded.image, max_side=256)

    return await run_in_threadpool(work)


async def listing_evidence(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    job_id: str,
    image: str,
    object_id: str,
    translator: Translator | None = None,
) -> bytes:
    """The evidence picture of a listing against the object it matched, logged like every
    evidence fetch; its words in ``translator``'s language (English without one)."""

    def work() -> bytes:
        if not principal.may(Action.READ_OBJECTS):
            raise NotFound(f"no evidence for job {job_id}")
        listing_id, data = _listing_photo(rt, principal, job_id, image, object_id)
        query = decode_image(data, source=image, max_pixels=rt.settings.max_image_pixels)
        photos = [p.id for p in rt.queries.photos_of(object_id)] if _exists(rt, object_id) else []
        if not photos:
            raise InvalidImage(f"object {object_id} has no photos left to compare with")
        t = translator or translator_of(None)
        caption = t.gettext("listing %(listing)s", listing=listing_id) + f" ({Path(image).name})"
        png = best_photo_evidence_png(services, query, photos, caption=caption, translate=t.gettext)
        rt.audit.append(
            actor=principal.account.username,
            action="evidence",
            subject=f"job {job_id}",
            details={"listing_id": listing_id, "object_id": object_id},
        )
        return png

    return await run_in_threadpool(work)
