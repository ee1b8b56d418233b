"""The pages people use in a browser. Each handler declares its role like the API's do and
calls the same operations; forms carry a CSRF token, scripts send it as X-CSRF-Token."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from kernel.enums import ObjectStatus, Role, TokenKind
from kernel.errors import ArtmatchError
from kernel.schemas import OBJECT_ID_FIELDS, StatusChange
from models.images import decode_image, make_thumbnail
from service import operations as ops
from service.deps import (
    SESSION_COOKIE,
    Admin,
    Analyst,
    Anyone,
    Auditor,
    CatalogueReader,
    Investigator,
    Registrar,
    RuntimeDep,
    ServicesDep,
)
from service.pages import home_of, render
from service.security import new_token, token_sha256, verify_password
from service.uploads import read_upload

router = APIRouter(include_in_schema=False)

_PAGE = HTMLResponse


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


@router.get("/", response_class=_PAGE, summary="Home (role: any; else the login page)")
def index(request: Request, runtime: RuntimeDep) -> RedirectResponse:
    from service.deps import Principal  # noqa: F401  (documentation of the role check below)

    session = request.cookies.get(SESSION_COOKIE)
    account = (
        runtime.accounts.account_for_token(token_sha256(session), kind=TokenKind.SESSION)
        if session
        else None
    )
    if account is None:
        return RedirectResponse("/login", status_code=303)
    from service.deps import Principal as P

    return RedirectResponse(home_of(P(account)), status_code=303)


@router.get("/login", response_class=_PAGE, summary="Login form (role: public)")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next) or "")


@router.post("/login", response_class=_PAGE, summary="Log in (role: public)")
def login(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> HTMLResponse:
    account = runtime.accounts.by_username(username.strip())
    ok = verify_password(account.password_hash if account else None, password)
    if account is None or not ok or not account.active:
        return render(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next) or "",
            error="Unknown user name or wrong password.",
            username=username,
        )
    token, digest = new_token("ses")
    hours = runtime.web.session_hours
    runtime.accounts.add_token(
        account_id=account.id,
        name="browser login",
        kind=TokenKind.SESSION,
        token_sha256=digest,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
    )
    from service.deps import Principal

    target = _safe_next(next) or home_of(Principal(account))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=hours * 3600,
        httponly=True,
        samesite="lax",
        secure=runtime.web.secure_cookies,
    )
    return response  # type: ignore[return-value]


@router.post("/logout", response_class=_PAGE, summary="Log out (role: any)")
def logout(user: Anyone, runtime: RuntimeDep) -> RedirectResponse:
    if user.session:
        runtime.accounts.delete_token(token_sha256=token_sha256(user.session))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- catalogue -----------------------------------------------------------------------------


@router.get(
    "/objects",
    response_class=_PAGE,
    summary="Catalogue browser (roles: registrar (own), investigator, analyst)",
)
def objects_page(
    request: Request,
    user: CatalogueReader,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[ObjectStatus | None, Query()] = None,
    institution: Annotated[str | None, Query(max_length=200)] = None,
    object_type: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    from service.routes.objects import list_objects

    if status == "":
        status = None
    result = list_objects(
        user,
        runtime,
        status=[status] if status else None,
        institution=[institution] if institution else None,
        object_type=object_type or None,
        q=q or None,
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
        institutions=[i.name for i in runtime.queries.institutions()],
        object_types=runtime.queries.object_types(),
    )


@router.get("/upload", response_class=_PAGE, summary="New object with photos (role: registrar)")
def upload_page(request: Request, user: Registrar) -> HTMLResponse:
    fields = [
        f
        for f in OBJECT_ID_FIELDS
        if f not in ("inscriptions_markings", "distinguishing_features", "description")
    ]
    return render(request, "upload.html", user, fields=fields, statuses=list(ObjectStatus))


@router.get(
    "/objects/{object_id}",
    response_class=_PAGE,
    summary="Object page (roles: registrar (own), investigator, analyst)",
)
def object_page(
    request: Request, object_id: str, user: CatalogueReader, runtime: RuntimeDep
) -> HTMLResponse:
    detail = ops.object_detail(runtime, user, object_id)
    record = {f: getattr(detail, f) for f in OBJECT_ID_FIELDS if getattr(detail, f)}
    return render(
        request,
        "object.html",
        user,
        obj=detail,
        record=record,
        can_edit=user.may_manage(detail.institution),
        statuses=list(ObjectStatus),
        today=dt.date.today().isoformat(),
    )


@router.post(
    "/objects/{object_id}/status", response_class=_PAGE, summary="Change status (role: registrar)"
)
def object_status(
    object_id: str,
    user: Registrar,
    runtime: RuntimeDep,
    status: Annotated[ObjectStatus, Form()],
    date: Annotated[dt.date | None, Form()] = None,
    reference: Annotated[str | None, Form(max_length=500)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> RedirectResponse:
    change = StatusChange(status=status, date=date, reference=reference or None, note=note or None)
    ops.change_status(runtime, user, object_id, change)
    return RedirectResponse(f"/objects/{object_id}", status_code=303)


# -- search --------------------------------------------------------------------------------


def _filters_ctx(runtime: RuntimeDep) -> dict[str, object]:
    return {
        "statuses": list(ObjectStatus),
        "institutions": [i.name for i in runtime.queries.institutions()],
    }


@router.get("/search", response_class=_PAGE, summary="Search page (role: investigator)")
def search_page(request: Request, user: Investigator, runtime: RuntimeDep) -> HTMLResponse:
    return render(request, "search.html", user, **_filters_ctx(runtime))


@router.post("/search", response_class=_PAGE, summary="Search results (role: investigator)")
async def search_results(
    request: Request,
    user: Investigator,
    runtime: RuntimeDep,
    services: ServicesDep,
    file: Annotated[UploadFile, File()],
    case_reference: Annotated[str | None, Form(max_length=500)] = None,
    scope: Annotated[str, Form(max_length=20)] = "lost",
    institution: Annotated[str | None, Form(max_length=200)] = None,
) -> HTMLResponse:
    ctx = _filters_ctx(runtime) | {"case_reference": case_reference or "", "scope": scope}
    try:
        data = await read_upload(file, limit=runtime.settings.max_upload_bytes)
        statuses = [ObjectStatus.STOLEN, ObjectStatus.MISSING] if scope == "lost" else None
        result = await ops.run_search(
            runtime,
            services,
            user,
            data=data,
            filename=file.filename or "query",
            case_reference=case_reference or None,
            statuses=statuses,
            institutions=[institution] if institution else None,
            top_k=12,
        )
        preview = await run_in_threadpool(_preview, data, runtime.settings.max_image_pixels)
    except ArtmatchError as exc:
        from service.errors import status_of

        return render(
            request, "search.html", user, status_code=status_of(exc), error=str(exc), **ctx
        )
    known = set(type(result.hits[0]).model_fields) if result.hits else set()
    base_fields = {
        "rank",
        "object_id",
        "institution",
        "status",
        "title",
        "maker",
        "similarity",
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
    return render(
        request,
        "search.html",
        user,
        result=result,
        query_preview=preview,
        extra_fields=sorted(known - base_fields),
        **ctx,
    )


def _preview(data: bytes, max_pixels: int) -> str:
    image = decode_image(data, source="query", max_pixels=max_pixels)
    return (
        "data:image/jpeg;base64,"
        + base64.b64encode(make_thumbnail(image.image, max_side=480)).decode()
    )


# -- batch jobs, audit, admin --------------------------------------------------------------


@router.get("/jobs", response_class=_PAGE, summary="Batch checks (role: analyst)")
def jobs_page(request: Request, user: Analyst, runtime: RuntimeDep) -> HTMLResponse:
    jobs = [ops.job_public(j) for j in runtime.accounts.list_jobs()]
    return render(request, "jobs.html", user, jobs=jobs)


@router.get("/jobs/{job_id}", response_class=_PAGE, summary="One batch check (role: analyst)")
def job_page(request: Request, job_id: str, user: Analyst, runtime: RuntimeDep) -> HTMLResponse:
    job = ops.job_public(runtime.accounts.get_job(job_id))
    return render(request, "job.html", user, job=job)


@router.get("/audit", response_class=_PAGE, summary="Search log (role: auditor)")
def audit_page(
    request: Request,
    user: Auditor,
    runtime: RuntimeDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    username: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    rows, total = runtime.accounts.search_log(
        offset=(page - 1) * 50, limit=50, username=username or None
    )
    pages = max(1, -(-total // 50))
    return render(
        request,
        "audit.html",
        user,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        username=username or "",
    )


@router.get("/admin", response_class=_PAGE, summary="Accounts and institutions (role: admin)")
def admin_page(request: Request, user: Admin, runtime: RuntimeDep) -> HTMLResponse:
    return render(
        request,
        "admin.html",
        user,
        accounts=runtime.accounts.list_accounts(),
        institutions=runtime.queries.institutions(),
        roles=list(Role),
    )
