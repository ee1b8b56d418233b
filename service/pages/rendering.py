"""Rendering the server-side pages (Jinja2 templates in `service/templates`)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from service import policy
from service.deps import Principal
from service.operations.alerts import alert_count
from service.policy import Action

__all__ = ["install_translation_stubs", "render", "render_error"]


# --- translation stubs (issue 12) ---------------------------------------------------------
# Identity `_` and `ngettext` so templates can mark their words now; the translation work
# (branch issue12-lang) replaces this one place with Babel's gettext.
def _identity(message: str, **fields: Any) -> str:
    return message % fields if fields else message


def _ngettext(singular: str, plural: str, n: int, **fields: Any) -> str:
    return _identity(singular if n == 1 else plural, **({"num": n} | fields))


def install_translation_stubs(env: Any) -> None:
    """Define ``_`` and ``ngettext`` in the Jinja environment unless already defined."""
    env.globals.setdefault("_", _identity)
    env.globals.setdefault("gettext", _identity)
    env.globals.setdefault("ngettext", _ngettext)


# --- end of translation stubs -------------------------------------------------------------


def render(
    request: Request,
    template: str,
    principal: Principal | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template``; for a logged-in ``principal`` the template gets its menu (``nav``)
    and ``may(action)``, so that it shows what `service.policy` allows and nothing else."""
    templates = request.app.state.templates
    install_translation_stubs(templates.env)
    base: dict[str, Any] = {
        "user": principal,
        "csrf": principal.csrf if principal else None,
        "nav": policy.menu(principal.role) if principal else [],
        "may": principal.may if principal else (lambda action: False),
        "Action": Action,
        # The menu's count of open, unacknowledged alerts.
        "alert_count": _alert_count(request, principal),
    }
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, template, base | context, status_code=status_code
    )


def _alert_count(request: Request, principal: Principal | None) -> int:
    if principal is None or not principal.may(Action.ALERTS):
        return 0
    return alert_count(request.app.state.runtime, principal).unacknowledged


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, status=status, message=message)
