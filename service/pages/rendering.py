"""Rendering the server-side pages (Jinja2 templates in `service/templates`), in the reader's
language (`kernel.i18n`): the account's choice, else the one picked on the login page (cookie
``artmatch_lang``, set by ``?lang=``), else the browser's ``Accept-Language``, else English."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from kernel.i18n import (
    FIELD_LABELS,
    N_,
    Translator,
    locale_names,
    negotiate,
    normalise,
    translator,
)
from service import policy
from service.deps import Principal
from service.operations.alerts import alert_count
from service.policy import Action

__all__ = [
    "LANG_COOKIE",
    "EVIDENCE_WORDS",
    "WORDS",
    "js_strings",
    "render",
    "render_error",
    "translator_for",
]

#: The language a visitor picked before logging in (or while following the browser).
LANG_COOKIE = "artmatch_lang"


#: The words for the stored values pages show (object status, role, job status, review
#: decision, what an alert follows) and the menu's labels (`service.policy.NAVIGATION`).
WORDS = {
    "in_collection": N_("in collection"),
    "on_loan": N_("on loan"),
    "stolen": N_("stolen"),
    "missing": N_("missing"),
    "recovered": N_("recovered"),
    "registrar": N_("registrar"),
    "investigator": N_("investigator"),
    "analyst": N_("analyst"),
    "admin": N_("admin"),
    "auditor": N_("auditor"),
    "queued": N_("queued"),
    "running": N_("running"),
    "succeeded": N_("succeeded"),
    "failed": N_("failed"),
    "pending_review": N_("pending review"),
    "confirmed": N_("confirmed"),
    "rejected": N_("rejected"),
    "institution": N_("institution"),
    "object_type": N_("object type"),
    "case": N_("case"),
    "Catalogue": N_("Catalogue"),
    "Upload": N_("Upload"),
    "Search": N_("Search"),
    "Batch checks": N_("Batch checks"),
    "Cases": N_("Cases"),
    "Alerts": N_("Alerts"),
    "Search log": N_("Search log"),
    "Admin": N_("Admin"),
}


#: The words drawn on an evidence picture (`models.evidence.CAPTION_WORDS`, which a test
#: keeps equal to this), listed here so the catalogs carry them; ``{...}`` fields are
#: filled in after translation and must stay as they are.
EVIDENCE_WORDS = (
    N_("query photo"),
    N_("catalogue photo"),
    N_("object"),
    N_("matching points"),
    N_("matched region"),
    N_("{inliers} of {matches} candidate matches"),
    N_("no model"),
    N_("mirrored"),
)


def translator_for(request: Request, principal: Principal | None) -> Translator:
    """The language the page for this request speaks."""
    if principal is not None and principal.account.language:
        return translator(principal.account.language)
    picked = normalise(request.query_params.get("lang")) or normalise(
        request.cookies.get(LANG_COOKIE)
    )
    return translator(picked or negotiate(request.headers.get("accept-language")))


def js_strings(t: Translator) -> Markup:
    """The texts app.js shows, translated, as JSON for a ``<script type="application/json">``
    block ("<" escaped so no text can close the block)."""
    texts = {
        "network_error": t.gettext("network error"),
        "ready": t.gettext("ready"),
        "uploading": t.gettext("uploading"),
        "already_stored": t.gettext("already stored"),
        "stored": t.gettext("stored"),
        "failed": t.gettext("failed"),
        "delete_photo": t.gettext("Delete this photo?"),
        "listings": t.gettext("listings"),
        "listing": t.gettext("Listing"),
        "object": t.gettext("Object"),
        "confidence": t.gettext("Confidence"),
        "status": t.gettext("Status"),
        "listing_title": t.gettext("Listing title"),
        "no_listing_matched": t.gettext("No listing matched a stolen or missing object."),
        "job_status": {
            "queued": t.gettext("queued"),
            "running": t.gettext("running"),
            "succeeded": t.gettext("succeeded"),
            "failed": t.gettext("failed"),
        },
    }
    return Markup(json.dumps(texts, ensure_ascii=False).replace("<", "\\u003c"))


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
    t = translator_for(request, principal)
    base: dict[str, Any] = {
        "user": principal,
        "csrf": principal.csrf if principal else None,
        "nav": policy.menu(principal.role) if principal else [],
        "may": principal.may if principal else (lambda action: False),
        "Action": Action,
        # The menu's count of open, unacknowledged alerts.
        "alert_count": _alert_count(request, principal),
        "_translations": t,
        "lang": t.locale,
        "html_lang": t.html_lang,
        "languages": locale_names(),
        "js_strings": js_strings(t),
        "field_labels": FIELD_LABELS,
        # A stored value ("stolen", "pending_review") in the reader's words.
        "word": lambda value: t.gettext(WORDS.get(str(value), str(value).replace("_", " "))),
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, template, base | context, status_code=status_code
    )
    picked = normalise(request.query_params.get("lang"))
    if picked and picked != request.cookies.get(LANG_COOKIE):
        # Remembered for the next pages of a visitor who is not (yet) logged in.
        response.set_cookie(LANG_COOKIE, picked, max_age=365 * 86400, samesite="lax")
    return response


def _alert_count(request: Request, principal: Principal | None) -> int:
    if principal is None or not principal.may(Action.ALERTS):
        return 0
    return alert_count(request.app.state.runtime, principal).unacknowledged


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, status=status, message=message)
