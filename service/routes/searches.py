"""Searching with a photo (investigators), evidence pictures (their author, admins, auditors),
and the search log and audit chain (auditors)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile

from kernel.enums import ObjectStatus
from service.deps import MayAudit, MaySearch, Principal, RuntimeDep, ServicesDep, require
from service.operations import search_log as log_ops
from service.operations import searches as ops
from service.pages.rendering import translator_for
from service.policy import Action
from service.schemas import (
    AuditEntryOut,
    ChainStatusOut,
    DbId,
    Page,
    SearchLogOut,
    SearchResponse,
)
from service.uploads import read_upload
from storage.catalogue.search_log import SearchLogFilter

router = APIRouter(prefix="/api/v1")

# Declared here rather than in service.deps: only the evidence route needs it.
MaySeeEvidence = Annotated[Principal, Depends(require(Action.SEARCH_EVIDENCE))]


@router.post(
    "/searches",
    response_model=SearchResponse,
    tags=["searches"],
    summary="Search the catalogues with a photo; the search is logged (role: investigator)",
)
async def create_search(
    file: Annotated[UploadFile, File(description="The photo to search with")],
    user: MaySearch,
    runtime: RuntimeDep,
    services: ServicesDep,
    case_reference: Annotated[str | None, Form(max_length=500)] = None,
    status: Annotated[list[ObjectStatus] | None, Form()] = None,
    institution: Annotated[list[str] | None, Form()] = None,
    top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    case_id: Annotated[
        int | None, Form(ge=1, le=2**63 - 1, description="Attach the search to this case")
    ] = None,
) -> SearchResponse:
    data = await read_upload(file, limit=runtime.settings.max_upload_bytes)
    return await ops.run_search(
        runtime,
        services,
        user,
        data=data,
        filename=file.filename or "query",
        case_reference=case_reference or None,
        statuses=status or None,
        institutions=[i for i in institution or [] if i] or None,
        top_k=top_k,
        case_id=case_id,
    )


@router.get(
    "/searches/{search_id}/evidence/{photo_id}.png",
    response_class=Response,
    tags=["searches"],
    responses={200: {"content": {"image/png": {}}}},
    summary="Evidence picture: the search photo beside a catalogue photo, inliers drawn "
    "(role: the search's investigator, admin, auditor; logged)",
)
async def search_evidence(
    search_id: DbId,
    photo_id: DbId,
    user: MaySeeEvidence,
    runtime: RuntimeDep,
    services: ServicesDep,
    request: Request,
) -> Response:
    png = await ops.search_evidence(
        runtime,
        services,
        user,
        search_id=search_id,
        photo_id=photo_id,
        translator=translator_for(request, user),
    )
    return Response(content=png, media_type="image/png")


_Since = Annotated[dt.date | None, Query(description="From this day (UTC)")]
_Until = Annotated[dt.date | None, Query(description="To this day (UTC), included")]
_Case = Annotated[str | None, Query(max_length=500, description="Part of the case reference")]
_User = Annotated[str | None, Query(max_length=100)]


def _log_filter(
    username: _User = None, case: _Case = None, since: _Since = None, until: _Until = None
) -> SearchLogFilter:
    """The search log's filters from the query string (the page and its CSV export)."""
    return log_ops.log_filter(username=username, case=case, since=since, until=until)


_LogFilter = Annotated[SearchLogFilter, Depends(_log_filter)]


@router.get(
    "/searches",
    response_model=Page[SearchLogOut],
    tags=["searches"],
    summary="The search log, filtered by user, case and dates (role: auditor)",
)
def search_log(
    user: MayAudit,
    runtime: RuntimeDep,
    filters: _LogFilter,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[SearchLogOut]:
    return log_ops.search_log(runtime, filters=filters, page=page, page_size=page_size)


@router.get(
    "/searches.csv",
    response_class=Response,
    tags=["searches"],
    responses={200: {"content": {"text/csv": {}}}},
    summary="The filtered search log as CSV (role: auditor; the export is logged)",
)
def search_log_csv(user: MayAudit, runtime: RuntimeDep, filters: _LogFilter) -> Response:
    text = log_ops.search_log_csv(runtime, user, filters=filters)
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="search-log.csv"'},
    )


@router.get(
    "/audit",
    response_model=Page[AuditEntryOut],
    tags=["audit"],
    summary="The audit chain, newest first (role: auditor)",
)
def audit_log(
    user: MayAudit,
    runtime: RuntimeDep,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=50)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AuditEntryOut]:
    return ops.audit_entries(runtime, actor=actor, action=action, page=page, page_size=page_size)


@router.get(
    "/audit/verify",
    response_model=ChainStatusOut,
    tags=["audit"],
    summary="Check the audit chain from its first entry (role: auditor)",
)
def verify_audit_chain(user: MayAudit, runtime: RuntimeDep) -> ChainStatusOut:
    return ops.verify_chain(runtime)
