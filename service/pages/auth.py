"""Logging in and out of the pages, and the home page that sends each role where it works."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kernel.i18n import N_
from service import policy
from service.deps import SESSION_COOKIE, Anyone, RuntimeDep
from service.operations import accounts as ops
from service.pages.rendering import render, translator_for
from service.security import LoginRefused, too_many_attempts

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


@router.get("/", response_class=HTMLResponse, summary="Home (role: any; else the login page)")
def index(request: Request, runtime: RuntimeDep) -> RedirectResponse:
    account = ops.session_account(runtime, request.cookies.get(SESSION_COOKIE))
    if account is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(policy.home_of(account.role), status_code=303)


@router.get("/login", response_class=HTMLResponse, summary="Login form (role: public)")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next) or "")


@router.post("/login", response_class=HTMLResponse, summary="Log in (role: public)")
def login(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    address = request.client.host if request.client else None
    try:
        session = ops.log_in(runtime, username, password, address=address)
    except LoginRefused as exc:
        # A browser gets the form again; a script the JSON error body. Both learn when to retry.
        if "text/html" not in request.headers.get("accept", ""):
            return too_many_attempts(exc)
        page = render(
            request,
            "login.html",
            status_code=429,
            next=_safe_next(next) or "",
            error=translator_for(request, None).gettext(
                "Too many failed logins; try again in %(seconds)s seconds.",
                seconds=exc.retry_after,
            ),
            username=username,
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if session is None:
        return render(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next) or "",
            error=N_("Unknown user name or wrong password."),
            username=username,
        )
    account, token = session
    target = _safe_next(next) or policy.home_of(account.role)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=runtime.web.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=runtime.web.secure_cookies,
    )
    return response


@router.post("/logout", response_class=HTMLResponse, summary="Log out (role: any)")
def logout(user: Anyone, runtime: RuntimeDep) -> RedirectResponse:
    ops.log_out(runtime, user)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
