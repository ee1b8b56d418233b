"""Rendering helpers of the server-side pages (Jinja2 templates in `service/templates`)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from kernel.enums import Role
from service.deps import Principal

__all__ = ["home_of", "render", "render_error"]

_HOME = {
    Role.REGISTRAR: "/objects",
    Role.INVESTIGATOR: "/search",
    Role.ANALYST: "/jobs",
    Role.ADMIN: "/admin",
    Role.AUDITOR: "/audit",
}


def home_of(principal: Principal) -> str:
    return _HOME[principal.role]


def render(
    request: Request,
    template: str,
    principal: Principal | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        template,
        {"user": principal, "csrf": principal.csrf if principal else None, "Role": Role} | context,
        status_code=status_code,
    )


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, status=status, message=message)
