"""Match reports and due-diligence receipts of searches (the search's author, admins,
auditors; logged), checking a report (any account), and the signing key (public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Header, UploadFile
from fastapi.responses import Response

from kernel.i18n import negotiate
from service.deps import Anyone, Principal, RuntimeDep, ServicesDep, require
from service.operations import reports as ops
from service.operations.reports import PublicKeyOut, ReportFormat, VerdictOut
from service.policy import Action
from service.schemas import DbId
from service.uploads import read_upload

router = APIRouter(prefix="/api/v1")

# The same action as the evidence pictures: a report is the search's evidence, bound.
MaySeeEvidence = Annotated[Principal, Depends(require(Action.SEARCH_EVIDENCE))]

_MEDIA = {ReportFormat.PDF: "application/pdf", ReportFormat.HTML: "text/html; charset=utf-8"}


@router.get(
    "/searches/{search_id}/report.{fmt}",
    response_class=Response,
    tags=["reports"],
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}}},
    summary="Signed match report of a search, or a due-diligence receipt when nothing "
    "matched (role: the search's investigator, admin, auditor; logged)",
)
async def search_report(
    search_id: DbId,
    fmt: ReportFormat,
    user: MaySeeEvidence,
    runtime: RuntimeDep,
    services: ServicesDep,
    accept_language: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    data = await ops.report_of_searches(
        runtime,
        services,
        user,
        search_ids=[search_id],
        fmt=fmt,
        language=negotiate(accept_language),
    )
    name = f"artmatch-search-{search_id}.{fmt}"
    return Response(
        content=data,
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "/reports/verify",
    response_model=VerdictOut,
    tags=["reports"],
    summary="Check a report (PDF or HTML): signature by this service's key and content "
    "intact (any account)",
)
async def verify_report(
    file: Annotated[UploadFile, File(description="The report, PDF or HTML")],
    user: Anyone,
    runtime: RuntimeDep,
) -> VerdictOut:
    data = await read_upload(
        file,
        limit=runtime.settings.max_upload_bytes,
        kind="manifest",
        allowed=("application/pdf", "text/html", "text/plain"),
    )
    return await ops.verify_report(runtime, data)


@router.get(
    "/reports/public-key",
    response_model=PublicKeyOut,
    tags=["reports"],
    summary="The public key reports are signed with (no account needed: anyone may check)",
)
def report_public_key(runtime: RuntimeDep) -> PublicKeyOut:
    return ops.public_key(runtime)
