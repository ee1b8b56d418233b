"""The auditor's search log and audit chain, and the admin's accounts and institutions pages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from kernel.enums import Role
from kernel.errors import ArtmatchError, InvalidInput
from kernel.i18n import N_, locale_names
from service.deps import MayAdminister, MayAudit, Principal, RuntimeDep
from service.errors import status_of
from service.operations import accounts, search_log, searches
from service.pages.rendering import WORDS, render, render_error, translator_for
from service.schemas import AccountUpdate

router = APIRouter(include_in_schema=False)

_LOG_PAGE = 50
_CHAIN_PAGE = 50


@router.get("/audit", response_class=HTMLResponse, summary="Search log (role: auditor)")
def audit_page(
    request: Request,
    user: MayAudit,
    runtime: RuntimeDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    username: Annotated[str | None, Query(max_length=100)] = None,
    case: Annotated[str | None, Query(max_length=500)] = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    # Blank date fields come as "": not a date, and not an error either.
    chosen = {"username": username, "case": case, "since": since, "until": until}
    kept = {k: v.strip() for k, v in chosen.items() if v and v.strip()}
    try:
        filters = search_log.log_filter(
            username=kept.get("username"),
            case=kept.get("case"),
            since=_day(kept.get("since")),
            until=_day(kept.get("until")),
        )
    except ArtmatchError as exc:
        return render_error(request, status_of(exc), exc.message)
    log = search_log.search_log(runtime, filters=filters, page=page, page_size=_LOG_PAGE)
    return render(
        request,
        "audit.html",
        user,
        rows=log.items,
        total=log.total,
        page=page,
        pages=max(1, -(-log.total // _LOG_PAGE)),
        username=kept.get("username", ""),
        filters=kept,
        page_url=lambda p: "?" + urlencode(kept | {"page": p}),
        csv_url="/api/v1/searches.csv" + ("?" + urlencode(kept) if kept else ""),
        # Checked on every visit: the auditor sees at once when a row was touched.
        chain=searches.verify_chain(runtime),
        events=searches.audit_entries(
            runtime, actor=None, action=None, page=1, page_size=_CHAIN_PAGE
        ).items,
    )


def _day(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _admin(
    request: Request,
    user: Principal,
    runtime: RuntimeDep,
    *,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "admin.html",
        user,
        status_code=status_code,
        accounts=accounts.list_accounts(runtime),
        institutions=runtime.queries.institutions(),
        roles=list(Role),
        error=error,
        notice=notice,
    )


@router.get(
    "/admin", response_class=HTMLResponse, summary="Accounts and institutions (role: admin)"
)
def admin_page(
    request: Request,
    user: MayAdminister,
    runtime: RuntimeDep,
    notice: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    return _admin(request, user, runtime, notice=notice)


@router.post(
    "/admin/accounts/{account_id}",
    response_class=HTMLResponse,
    summary="Disable, enable, change the role of, or reset the password of an account "
    "(role: admin; the form carries the CSRF token)",
)
def change_account(
    request: Request,
    account_id: int,
    user: MayAdminister,
    runtime: RuntimeDep,
    change: Annotated[Literal["disable", "enable", "role", "password", "language"], Form()],
    role: Annotated[Role | None, Form()] = None,
    institution: Annotated[str | None, Form(max_length=200)] = None,
    password: Annotated[str | None, Form(max_length=200)] = None,
    language: Annotated[str | None, Form(max_length=20)] = None,
) -> Response:
    try:
        if change == "role":
            body = AccountUpdate(role=role, institution=institution or None)
        elif change == "password":
            body = AccountUpdate(password=password)
        elif change == "language":
            body = AccountUpdate(language=language or "")
        else:
            body = AccountUpdate(active=change == "enable")
        if change == "role" and role is None:
            raise ValueError(N_("choose a role"))
        if change == "password" and not password:
            raise ValueError(N_("type the new password"))
        account = accounts.update_account(runtime, user, account_id, body)
    except ArtmatchError as exc:
        return _admin(request, user, runtime, status_code=status_of(exc), error=str(exc))
    except ValidationError as exc:  # e.g. a password under 10 characters
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        return _admin(request, user, runtime, status_code=422, error=message)
    except ValueError as exc:
        return _admin(request, user, runtime, status_code=422, error=str(exc))
    t = translator_for(request, user)
    notice = quote(
        {
            "disable": t.gettext(
                "Account %(user)s disabled; its sessions and API tokens are revoked.",
                user=account.username,
            ),
            "enable": t.gettext("Account %(user)s enabled.", user=account.username),
            "role": t.gettext(
                "Account %(user)s is now %(role)s.",
                user=account.username,
                role=t.gettext(WORDS.get(account.role.value, account.role.value)),
            ),
            "password": t.gettext(
                "Account %(user)s has a new password; its sessions and API tokens are revoked.",
                user=account.username,
            ),
            "language": t.gettext(
                "Account %(user)s reads the pages in %(language)s.",
                user=account.username,
                language=dict(locale_names()).get(
                    account.language or "", t.gettext("the language its browser asks for")
                ),
            ),
        }[change]
    )
    return RedirectResponse(f"/admin?notice={notice}", status_code=303)
