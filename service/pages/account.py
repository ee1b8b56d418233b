"""The caller's own account page: who they are and the language the pages and reports speak
to them (`kernel.i18n`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kernel.errors import ArtmatchError
from service.deps import Anyone, RuntimeDep
from service.errors import status_of
from service.operations import accounts as ops
from service.pages.rendering import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/account", response_class=HTMLResponse, summary="Own account page (role: any)")
def account_page(request: Request, user: Anyone, saved: bool = False) -> HTMLResponse:
    return render(request, "account.html", user, saved=saved)


@router.post(
    "/account/language",
    response_class=HTMLResponse,
    summary="Choose the pages' language (role: any; the form carries the CSRF token)",
)
def set_language(
    request: Request,
    user: Anyone,
    runtime: RuntimeDep,
    language: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        ops.set_own_language(runtime, user, language)
    except ArtmatchError as exc:
        return render(request, "account.html", user, status_code=status_of(exc), error=str(exc))
    return RedirectResponse("/account?saved=true", status_code=303)
