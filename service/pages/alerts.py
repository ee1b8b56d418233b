"""The Alerts page: one's alerts (acknowledge them), what one follows, one's webhook. Forms
post here with their CSRF token and come back to the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from kernel.errors import ArtmatchError
from service.deps import MayFollowAlerts, Principal, RuntimeDep
from service.errors import status_of
from service.operations import alerts as ops
from service.operations import catalogue as catalogue_ops
from service.pages.rendering import render
from service.runtime import Runtime
from storage.catalogue.alerts import SubscriptionKind

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    user: Principal,
    runtime: Runtime,
    *,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "alerts.html",
        user,
        status_code=status,
        error=error,
        alerts=ops.list_alerts(runtime, user),
        subscriptions=ops.list_subscriptions(runtime, user),
        webhook=ops.get_webhook(runtime, user).url,
        kinds=list(SubscriptionKind),
        institutions=catalogue_ops.institution_names(runtime),
        object_types=catalogue_ops.object_types(runtime),
    )


@router.get(
    "/alerts",
    response_class=HTMLResponse,
    summary="Alerts (roles: registrar (own institution), investigator, analyst)",
)
def alerts_page(request: Request, user: MayFollowAlerts, runtime: RuntimeDep) -> HTMLResponse:
    return _page(request, user, runtime)


@router.post("/alerts/{alert_id}/acknowledge", response_class=RedirectResponse)
def acknowledge(alert_id: int, user: MayFollowAlerts, runtime: RuntimeDep) -> RedirectResponse:
    ops.acknowledge(runtime, user, alert_id)
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/subscriptions", response_class=HTMLResponse, response_model=None)
def subscribe(
    request: Request,
    user: MayFollowAlerts,
    runtime: RuntimeDep,
    kind: Annotated[SubscriptionKind, Form()],
    value: Annotated[str, Form(min_length=1, max_length=500)],
) -> HTMLResponse | RedirectResponse:
    try:
        ops.subscribe(runtime, user, ops.SubscriptionIn(kind=kind, value=value))
    except ArtmatchError as exc:
        return _page(request, user, runtime, status=status_of(exc), error=str(exc))
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/subscriptions/{subscription_id}/delete", response_class=RedirectResponse)
def unsubscribe(
    subscription_id: int, user: MayFollowAlerts, runtime: RuntimeDep
) -> RedirectResponse:
    ops.unsubscribe(runtime, user, subscription_id)
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/webhook", response_class=HTMLResponse, response_model=None)
def webhook(
    request: Request,
    user: MayFollowAlerts,
    runtime: RuntimeDep,
    url: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse | RedirectResponse:
    try:
        ops.set_webhook(runtime, user, ops.WebhookIn(url=url or None))
    except ArtmatchError as exc:
        return _page(request, user, runtime, status=status_of(exc), error=str(exc))
    return RedirectResponse("/alerts", status_code=303)
