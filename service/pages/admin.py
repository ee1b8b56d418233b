"""The auditor's search log and the admin's accounts and institutions pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from kernel.enums import Role
from service.deps import MayAdminister, MayAudit, RuntimeDep
from service.operations import accounts, searches
from service.pages.rendering import render

router = APIRouter(include_in_schema=False)

_LOG_PAGE = 50


@router.get("/audit", response_class=HTMLResponse, summary="Search log (role: auditor)")
def audit_page(
    request: Request,
    user: MayAudit,
    runtime: RuntimeDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    username: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    log = searches.search_log(runtime, username=username or None, page=page, page_size=_LOG_PAGE)
    return render(
        request,
        "audit.html",
        user,
        rows=log.items,
        total=log.total,
        page=page,
        pages=max(1, -(-log.total // _LOG_PAGE)),
        username=username or "",
    )


@router.get(
    "/admin", response_class=HTMLResponse, summary="Accounts and institutions (role: admin)"
)
def admin_page(request: Request, user: MayAdminister, runtime: RuntimeDep) -> HTMLResponse:
    return render(
        request,
        "admin.html",
        user,
        accounts=accounts.list_accounts(runtime),
        institutions=runtime.queries.institutions(),
        roles=list(Role),
    )
