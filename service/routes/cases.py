"""Cases: open, list, read and change them, share them, attach searches, record review
decisions on their hits, and the query photos and evidence pictures of their searches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from kernel.i18n import negotiate
from service.deps import Principal, RuntimeDep, ServicesDep, require
from service.operations import cases as ops
from service.operations.cases import (
    CaseCreate,
    CaseDetail,
    CaseSummary,
    CaseUpdate,
    DecisionIn,
    DecisionOut,
    SearchAttach,
    ShareIn,
    ShareOut,
)
from service.operations.reports import ReportFormat
from service.pages.rendering import translator_for
from service.policy import Action
from service.schemas import DbId, Page

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

# Declared here rather than in service.deps: only the case routes need them.
MayUseCases = Annotated[Principal, Depends(require(Action.CASES))]
MayOpenCase = Annotated[Principal, Depends(require(Action.OPEN_CASE))]

_WHO = "(role: its author, those it is shared with, admin, auditor)"
_WRITERS = "(role: its author, read-write shares, admin)"


@router.get(
    "",
    response_model=Page[CaseSummary],
    summary="Your cases and those shared with you; every case for admins and auditors "
    "(role: investigator, analyst, admin, auditor)",
)
def list_cases(
    user: MayUseCases,
    runtime: RuntimeDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[CaseSummary]:
    return ops.list_cases(runtime, user, page=page, page_size=page_size)


@router.post(
    "",
    response_model=CaseDetail,
    status_code=201,
    summary="Open a case (role: investigator)",
)
def create_case(body: CaseCreate, user: MayOpenCase, runtime: RuntimeDep) -> CaseDetail:
    return ops.create_case(runtime, user, body)


@router.get("/{case_id}", response_model=CaseDetail, summary=f"A case {_WHO}")
def get_case(case_id: DbId, user: MayUseCases, runtime: RuntimeDep) -> CaseDetail:
    return ops.get_case(runtime, user, case_id)


@router.patch(
    "/{case_id}", response_model=CaseDetail, summary=f"Change reference, title or notes {_WRITERS}"
)
def update_case(
    case_id: DbId, body: CaseUpdate, user: MayUseCases, runtime: RuntimeDep
) -> CaseDetail:
    return ops.update_case(runtime, user, case_id, body)


@router.get("/{case_id}/shares", response_model=list[ShareOut], summary=f"Who shares a case {_WHO}")
def list_shares(case_id: DbId, user: MayUseCases, runtime: RuntimeDep) -> list[ShareOut]:
    return ops.get_case(runtime, user, case_id).shares


@router.post(
    "/{case_id}/shares",
    response_model=list[ShareOut],
    summary="Share a case with an investigator or analyst, read or read-write "
    "(role: its author, admin)",
)
def share_case(
    case_id: DbId, body: ShareIn, user: MayUseCases, runtime: RuntimeDep
) -> list[ShareOut]:
    return ops.share_case(runtime, user, case_id, body)


@router.delete(
    "/{case_id}/shares/{username}",
    response_model=list[ShareOut],
    summary="Take a share back (role: its author, admin)",
)
def unshare_case(
    case_id: DbId, username: str, user: MayUseCases, runtime: RuntimeDep
) -> list[ShareOut]:
    return ops.unshare_case(runtime, user, case_id, username)


@router.post(
    "/{case_id}/searches",
    response_model=CaseDetail,
    summary=f"Attach one of your searches to a case {_WRITERS}",
)
def attach_search(
    case_id: DbId, body: SearchAttach, user: MayUseCases, runtime: RuntimeDep
) -> CaseDetail:
    return ops.attach_search(runtime, user, case_id, body.search_id)


@router.get(
    "/{case_id}/decisions",
    response_model=list[DecisionOut],
    summary=f"Every review decision on a case's hits, newest first {_WHO}",
)
def decision_history(
    case_id: DbId,
    user: MayUseCases,
    runtime: RuntimeDep,
    search_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> list[DecisionOut]:
    return ops.decision_history(runtime, user, case_id, search_id=search_id)


@router.post(
    "/{case_id}/decisions",
    response_model=DecisionOut,
    status_code=201,
    summary=f"Confirm or reject a hit, or put it back to review {_WRITERS}",
)
def decide(case_id: DbId, body: DecisionIn, user: MayUseCases, runtime: RuntimeDep) -> DecisionOut:
    return ops.decide(runtime, user, case_id, body)


@router.get(
    "/{case_id}/searches/{search_id}/query.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
    summary=f"Thumbnail of the photo a case's search was made with {_WHO}",
)
async def case_query_photo(
    case_id: DbId, search_id: DbId, user: MayUseCases, runtime: RuntimeDep, services: ServicesDep
) -> Response:
    jpeg = await ops.case_query_photo(runtime, services, user, case_id=case_id, search_id=search_id)
    return Response(content=jpeg, media_type="image/jpeg")


@router.get(
    "/{case_id}/searches/{search_id}/evidence/{photo_id}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary=f"Evidence picture of a hit of a case's search {_WHO}; logged",
)
async def case_evidence(
    case_id: DbId,
    search_id: DbId,
    photo_id: DbId,
    user: MayUseCases,
    runtime: RuntimeDep,
    services: ServicesDep,
    request: Request,
) -> Response:
    png = await ops.case_evidence(
        runtime,
        services,
        user,
        case_id=case_id,
        search_id=search_id,
        photo_id=photo_id,
        translator=translator_for(request, user),
    )
    return Response(content=png, media_type="image/png")


@router.get(
    "/{case_id}/report.{fmt}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}}},
    summary=f"Signed match report of every search of a case {_WHO}; logged",
)
async def case_report(
    case_id: DbId,
    fmt: ReportFormat,
    user: MayUseCases,
    runtime: RuntimeDep,
    services: ServicesDep,
    accept_language: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    data = await ops.case_report(
        runtime, services, user, case_id=case_id, fmt=fmt, language=negotiate(accept_language)
    )
    media = "application/pdf" if fmt is ReportFormat.PDF else "text/html; charset=utf-8"
    name = f"artmatch-case-{case_id}.{fmt}"
    return Response(
        content=data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
