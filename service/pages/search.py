"""The investigator's search page: a photo in, the ranked catalogue objects out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse

from kernel.enums import LOST_STATUSES, ObjectStatus
from kernel.errors import ArtmatchError
from service.deps import MaySearch, Principal, RuntimeDep, ServicesDep
from service.errors import status_of
from service.operations import cases, catalogue, searches
from service.pages.rendering import render
from service.uploads import read_upload

router = APIRouter(include_in_schema=False)

#: The fields of a hit the results page shows by name; any other field the engine adds is
#: listed generically (``extra_fields``), so a new field shows without a template change.
_SHOWN_FIELDS = {
    "rank",
    "object_id",
    "institution",
    "status",
    "title",
    "maker",
    "similarity",
    "decision",
    "photo_keypoints",
    "is_match",
    "photo_id",
    "photo_view",
    "thumbnail_key",
    "loss_date",
    "loss_reference",
    "thumbnail_url",
    "image_url",
    "object_url",
    "confidence",
    "inliers",
    "verified",
    "region",
    "evidence_url",
}


def _filters_ctx(runtime: RuntimeDep, user: Principal) -> dict[str, Any]:
    return {
        "statuses": list(ObjectStatus),
        "institutions": catalogue.institution_names(runtime),
        # The cases a search may be attached to.
        "cases": cases.writable_cases(runtime, user),
    }


@router.get("/search", response_class=HTMLResponse, summary="Search page (role: investigator)")
def search_page(
    request: Request,
    user: MaySearch,
    runtime: RuntimeDep,
    case_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    return render(request, "search.html", user, case_id=case_id, **_filters_ctx(runtime, user))


@router.post("/search", response_class=HTMLResponse, summary="Search results (role: investigator)")
async def search_results(
    request: Request,
    user: MaySearch,
    runtime: RuntimeDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File()],
    case_reference: Annotated[str | None, Form(max_length=500)] = None,
    scope: Annotated[str, Form(max_length=20)] = "lost",
    institution: Annotated[str | None, Form(max_length=200)] = None,
    case_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    ctx = _filters_ctx(runtime, user) | {
        "case_reference": case_reference or "",
        "scope": scope,
        "case_id": case_id,
    }
    try:
        data = await read_upload(file, limit=runtime.settings.max_upload_bytes)
        result = await searches.run_search(
            runtime,
            services,
            user,
            data=data,
            filename=file.filename or "query",
            case_reference=case_reference or None,
            statuses=list(LOST_STATUSES) if scope == "lost" else None,
            institutions=[institution] if institution else None,
            top_k=12,
            via="page",
            case_id=case_id,
        )
        preview = await searches.query_preview(runtime, data)
    except ArtmatchError as exc:
        return render(
            request, "search.html", user, status_code=status_of(exc), error=str(exc), **ctx
        )
    known = set(type(result.hits[0]).model_fields) if result.hits else set()
    return render(
        request,
        "search.html",
        user,
        result=result,
        query_preview=preview,
        extra_fields=sorted(known - _SHOWN_FIELDS),
        **ctx,
    )
