"""Alerts and watchlists: subscriptions, one's alerts and their acknowledgement, a webhook,
re-check runs, and where an object was seen (roles: registrar (own institution),
investigator, analyst)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.deps import MayFollowAlerts, MayReadObjects, RuntimeDep
from service.operations import alerts as ops
from service.operations.alerts import (
    AlertCount,
    AlertOut,
    RecheckOut,
    SightingOut,
    SubscriptionIn,
    SubscriptionOut,
    WebhookIn,
    WebhookOut,
)
from service.schemas import DbId, Deleted

router = APIRouter(tags=["alerts"])

_ROLES = "roles: registrar (own institution), investigator, analyst"


@router.get(
    "/api/v1/alerts", response_model=list[AlertOut], summary=f"Your alerts, newest first ({_ROLES})"
)
def list_alerts(
    user: MayFollowAlerts,
    runtime: RuntimeDep,
    open_only: Annotated[bool, Query(description="Only alerts not closed by a recovery")] = False,
    unacknowledged: Annotated[bool, Query(description="Only alerts nobody acknowledged")] = False,
) -> list[AlertOut]:
    return ops.list_alerts(runtime, user, open_only=open_only, unacknowledged=unacknowledged)


@router.get(
    "/api/v1/alerts/count",
    response_model=AlertCount,
    summary=f"Open alerts not yet acknowledged ({_ROLES})",
)
def alert_count(user: MayFollowAlerts, runtime: RuntimeDep) -> AlertCount:
    return ops.alert_count(runtime, user)


@router.post(
    "/api/v1/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    summary=f"Acknowledge an alert: who and when are kept ({_ROLES})",
)
def acknowledge(alert_id: DbId, user: MayFollowAlerts, runtime: RuntimeDep) -> AlertOut:
    return ops.acknowledge(runtime, user, alert_id)


@router.get(
    "/api/v1/alerts/subscriptions",
    response_model=list[SubscriptionOut],
    summary=f"What you follow ({_ROLES})",
)
def list_subscriptions(user: MayFollowAlerts, runtime: RuntimeDep) -> list[SubscriptionOut]:
    return ops.list_subscriptions(runtime, user)


@router.post(
    "/api/v1/alerts/subscriptions",
    response_model=SubscriptionOut,
    status_code=201,
    summary=f"Follow an institution, an object type or a case ({_ROLES})",
)
def subscribe(body: SubscriptionIn, user: MayFollowAlerts, runtime: RuntimeDep) -> SubscriptionOut:
    return ops.subscribe(runtime, user, body)


@router.delete(
    "/api/v1/alerts/subscriptions/{subscription_id}",
    response_model=Deleted,
    summary=f"Stop following ({_ROLES})",
)
def unsubscribe(subscription_id: DbId, user: MayFollowAlerts, runtime: RuntimeDep) -> Deleted:
    ops.unsubscribe(runtime, user, subscription_id)
    return Deleted(deleted=f"subscription {subscription_id}")


@router.get("/api/v1/alerts/webhook", response_model=WebhookOut, summary=f"Your webhook ({_ROLES})")
def get_webhook(user: MayFollowAlerts, runtime: RuntimeDep) -> WebhookOut:
    return ops.get_webhook(runtime, user)


@router.put(
    "/api/v1/alerts/webhook",
    response_model=WebhookOut,
    summary=f"Set (or with null remove) the URL each new alert is POSTed to ({_ROLES})",
)
def set_webhook(body: WebhookIn, user: MayFollowAlerts, runtime: RuntimeDep) -> WebhookOut:
    return ops.set_webhook(runtime, user, body)


@router.get(
    "/api/v1/rechecks",
    response_model=list[RecheckOut],
    summary="Retroactive re-checks run when objects were reported lost, newest first "
    "(roles: registrar (own institution), investigator, analyst)",
)
def list_rechecks(
    user: MayReadObjects,
    runtime: RuntimeDep,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[RecheckOut]:
    return ops.list_rechecks(runtime, user, object_id=object_id)


@router.get(
    "/api/v1/objects/{object_id}/sightings",
    response_model=list[SightingOut],
    summary="Listings the object was seen in: venues, dates, prices, sellers "
    "(roles: registrar (own institution), investigator, analyst)",
)
def sightings(object_id: str, user: MayReadObjects, runtime: RuntimeDep) -> list[SightingOut]:
    return ops.sightings(runtime, user, object_id)
