"""Searching the catalogues with a photo (investigators), the evidence picture of a hit, the
search log and the audit chain (auditors).

A search, its query photo and its evidence pictures belong to their author, the admin and the
auditor (`service.policy.may_read_search`); anyone else is told the search does not exist,
since search ids are sequential. Every search and evidence fetch is chained in the audit log.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from engine import search as matching
from engine.evidence import photo_evidence_png, query_blob_key
from engine.reports import search_record
from engine.services import Services
from kernel.enums import ObjectStatus
from kernel.errors import NotFound
from kernel.i18n import Translator
from kernel.i18n import translator as translator_of
from models.images import decode_image, make_thumbnail
from service import policy
from service.deps import Principal
from service.operations.cases import cases_of, watch_matches, writable_case
from service.operations.links import (
    evidence_url,
    object_url,
    photo_image_url,
    photo_thumbnail_url,
)
from service.runtime import Runtime
from service.schemas import (
    AuditEntryOut,
    ChainStatusOut,
    Page,
    SearchHitOut,
    SearchResponse,
)

__all__ = [
    "audit_entries",
    "query_preview",
    "run_search",
    "search_evidence",
    "verify_chain",
]


async def run_search(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    data: bytes,
    filename: str,
    case_reference: str | None,
    statuses: Sequence[ObjectStatus] | None,
    institutions: Sequence[str] | None,
    top_k: int,
    via: str = "api",
    case_id: int | None = None,
) -> SearchResponse:
    """Run and log a search; ``via`` names the path in the log (api, page). With ``case_id``
    the search is attached to that case, which the caller must be allowed to change."""

    def work() -> SearchResponse:
        nonlocal case_reference
        if case_id is not None:
            # Checked before searching: a refused case must not leave an orphan search.
            case = writable_case(rt, principal, case_id)
            case_reference = case_reference or case.reference
        image = decode_image(data, source=filename, max_pixels=rt.settings.max_image_pixels)
        result = matching.search(
            services, image, top_k=top_k, statuses=statuses, institutions=institutions
        )
        # The query photo is evidence too: kept (content-addressed) for the evidence pictures.
        key = query_blob_key(image.sha256)
        if not services.blobs.exists(key):
            services.blobs.put(key, data, content_type=f"image/{image.format.lower()}")
        top = result.hits[0] if result.hits else None
        search_id = rt.search_log.log_search(
            username=principal.account.username,
            account_id=principal.account.id,
            via=via,
            case_reference=case_reference,
            query_sha256=result.query_sha256,
            filters={"statuses": statuses or None, "institutions": institutions or None},
            matches=len(result.matches),
            top_object_id=top.object_id if top else None,
            top_similarity=top.similarity if top else None,
            # What came back and what was searched, for a report or receipt made later.
            record=search_record(services, result),
        )
        if case_id is not None:
            cases_of(rt).attach_search(
                case_id, search_id=search_id, actor=principal.account.username
            )
            watch_matches(rt, case_id, search_id)
        hits = [
            SearchHitOut(
                **h.model_dump(),
                thumbnail_url=photo_thumbnail_url(h.photo_id),
                image_url=photo_image_url(h.photo_id),
                object_url=object_url(h.object_id),
                evidence_url=evidence_url(search_id, h.photo_id) if h.verified else None,
            )
            for h in result.hits
        ]
        return SearchResponse(
            **result.model_dump(exclude={"hits"}),
            hits=hits,
            search_id=search_id,
            case_reference=case_reference,
            case_id=case_id,
        )

    return await run_in_threadpool(work)


async def search_evidence(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    search_id: int,
    photo_id: int,
    translator: Translator | None = None,
) -> bytes:
    """The evidence picture of a hit, its words in ``translator``'s language (English
    without one)."""
    t = translator or translator_of(None)

    def work() -> bytes:
        logged = rt.search_log.get_search(search_id)
        if not policy.may_read_search(
            principal.role, account_id=principal.account.id, author_id=logged.account_id
        ):
            # The same answer as for a search that does not exist: ids are sequential.
            raise NotFound(f"no search {search_id}")
        data = services.blobs.get(query_blob_key(logged.query_sha256))
        query = decode_image(
            data, source=f"search {search_id}", max_pixels=rt.settings.max_image_pixels
        )
        caption = t.gettext("search %(search)s", search=search_id) + (
            ", " + t.gettext("case %(case)s", case=logged.case_reference)
            if logged.case_reference
            else ""
        )
        png = photo_evidence_png(services, query, photo_id, caption=caption, translate=t.gettext)
        rt.audit.append(
            actor=principal.account.username,
            action="evidence",
            subject=f"search {search_id}",
            details={"photo_id": photo_id, "author": logged.username},
        )
        return png

    return await run_in_threadpool(work)


async def query_preview(rt: Runtime, data: bytes) -> str:
    """A small JPEG of the query photo as a data: URL, for the results page."""

    def work() -> str:
        image = decode_image(data, source="query", max_pixels=rt.settings.max_image_pixels)
        thumbnail = make_thumbnail(image.image, max_side=480)
        return "data:image/jpeg;base64," + base64.b64encode(thumbnail).decode()

    return await run_in_threadpool(work)


def audit_entries(
    rt: Runtime, *, actor: str | None, action: str | None, page: int, page_size: int
) -> Page[AuditEntryOut]:
    rows, total = rt.audit.entries(
        offset=(page - 1) * page_size, limit=page_size, actor=actor, action=action
    )
    items = [AuditEntryOut(**r.__dict__) for r in rows]
    return Page[AuditEntryOut](items=items, total=total, page=page, page_size=page_size)


def verify_chain(rt: Runtime) -> ChainStatusOut:
    status = rt.audit.verify()
    return ChainStatusOut(**status.__dict__, summary=status.summary)
