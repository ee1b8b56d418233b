"""The catalogue pages: browse objects, one object (edit its status, add photos), upload a new
object. Forms carry a CSRF token; the page scripts send it as X-CSRF-Token to the API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kernel.enums import ObjectStatus
from kernel.errors import InvalidInput
from kernel.schemas import OBJECT_ID_FIELDS, StatusChange
from service.deps import MayManageObjects, MayReadObjects, Principal, RuntimeDep
from service.operations import alerts as alert_ops
from service.operations import catalogue as ops
from service.pages.rendering import render
from service.policy import Action
from service.runtime import Runtime

router = APIRouter(include_in_schema=False)

#: Long free-text fields left off the upload form (editable later through the API).
_LONG_FIELDS = ("inscriptions_markings", "distinguishing_features", "description")


@router.get(
    "/objects",
    response_class=HTMLResponse,
    summary="Catalogue browser (roles: registrar (own), investigator, analyst)",
)
def objects_page(
    request: Request,
    user: MayReadObjects,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[ObjectStatus | None, Query()] = None,
    institution: Annotated[str | None, Query(max_length=200)] = None,
    object_type: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    if status == "":
        status = None
    result = ops.list_objects(
        runtime,
        user,
        statuses=[status] if status else None,
        institutions=[institution] if institution else None,
        object_type=object_type or None,
        text=q or None,
        page=page,
        page_size=24,
    )
    filters = {
        k: v
        for k, v in {
            "q": q,
            "status": status,
            "institution": institution,
            "object_type": object_type,
        }.items()
        if v
    }
    pages = max(1, -(-result.total // result.page_size))
    return render(
        request,
        "objects.html",
        user,
        result=result,
        filters=filters,
        pages=pages,
        query_for=lambda p: "?" + urlencode(filters | {"page": p}),
        statuses=list(ObjectStatus),
        institutions=ops.institution_names(runtime),
        object_types=ops.object_types(runtime),
    )


@router.get(
    "/upload", response_class=HTMLResponse, summary="New object with photos (role: registrar)"
)
def upload_page(request: Request, user: MayManageObjects) -> HTMLResponse:
    fields = [f for f in OBJECT_ID_FIELDS if f not in _LONG_FIELDS]
    return render(request, "upload.html", user, fields=fields, statuses=list(ObjectStatus))


@router.get(
    "/objects/{object_id}",
    response_class=HTMLResponse,
    summary="Object page (roles: registrar (own), investigator, analyst)",
)
def object_page(
    request: Request, object_id: str, user: MayReadObjects, runtime: RuntimeDep
) -> HTMLResponse:
    return _object_page(request, user, runtime, object_id)


def _object_page(
    request: Request,
    user: Principal,
    runtime: Runtime,
    object_id: str,
    *,
    status_code: int = 200,
    status_error: str | None = None,
) -> HTMLResponse:
    detail = ops.object_detail(runtime, user, object_id)
    record = {f: getattr(detail, f) for f in OBJECT_ID_FIELDS if getattr(detail, f)}
    return render(
        request,
        "object.html",
        user,
        obj=detail,
        record=record,
        can_edit=user.may_on(Action.MANAGE_OBJECTS, detail.institution),
        statuses=list(ObjectStatus),
        today=dt.date.today().isoformat(),
        sightings=alert_ops.sightings(runtime, user, object_id),
        status_error=status_error,
        status_code=status_code,
    )


@router.post(
    "/objects/{object_id}/status",
    response_class=HTMLResponse,
    summary="Change status (role: registrar)",
)
def object_status(
    request: Request,
    object_id: str,
    user: MayManageObjects,
    runtime: RuntimeDep,
    status: Annotated[ObjectStatus, Form()],
    date: Annotated[dt.date | None, Form()] = None,
    reference: Annotated[str | None, Form(max_length=500)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    change = StatusChange(status=status, date=date, reference=reference or None, note=note or None)
    try:
        ops.change_status(runtime, user, object_id, change)
    except InvalidInput as exc:
        # Shown in the form, with the rest of the page, not as a page of its own.
        return _object_page(
            request, user, runtime, object_id, status_code=422, status_error=exc.message
        )
    return RedirectResponse(f"/objects/{object_id}", status_code=303)
