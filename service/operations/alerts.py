"""Alerts, subscriptions, webhooks, re-checks and sightings for the API and the pages.

A caller sees an alert when one of their subscriptions fits it (its institution, its object
type, or a case watching its object) *and* they may read the object's catalogue
(`service.policy.may_on`): a registrar following an object type sees that type's alerts of
their own institution only. A re-check runs in a background thread, off the request that
reported the loss; webhooks are posted from that thread with a timeout, never from a request.
The schemas of this area live here, beside the only code that fills them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from engine.services import Services
from ingest.recheck import recheck_object
from kernel.enums import LOST_STATUSES, ObjectStatus
from kernel.errors import ArtmatchError, InvalidInput, NotFound
from kernel.i18n import N_
from service.deps import Principal
from service.errors import Forbidden
from service.operations.cases import readable_case
from service.operations.links import object_url
from service.policy import Action, may_on
from service.runtime import Runtime
from storage.catalogue.alerts import (
    AlertRecord,
    AlertStore,
    RecheckRecord,
    SightingRecord,
    SubscriptionKind,
)

__all__ = [
    "AlertCount",
    "AlertOut",
    "RecheckOut",
    "SightingOut",
    "SubscriptionIn",
    "SubscriptionOut",
    "WebhookIn",
    "WebhookOut",
    "acknowledge",
    "alert_count",
    "close_alerts",
    "earlier_appearances",
    "finish_recheck",
    "get_webhook",
    "notify_alerts",
    "job_earlier_appearances",
    "list_alerts",
    "list_rechecks",
    "list_subscriptions",
    "set_webhook",
    "sightings",
    "start_recheck",
    "subscribe",
    "unsubscribe",
]

log = logging.getLogger(__name__)

#: Seconds a re-check waits for the model and index of a service still loading.
_WAIT_FOR_SERVICES_S = 600.0


class AlertOut(BaseModel):
    id: int
    object_id: str
    object_url: str
    institution: str
    object_type: str | None
    object_status: str
    source: str
    listing_id: str
    image_sha256: str
    listing_title: str | None
    url: str | None
    seller: str | None
    price: str | None
    listed_on: str | None
    confidence: float
    inliers: int | None
    #: "recheck" (found when the object was reported) or "check" (a new listing check).
    origin: str
    created_at: dt.datetime
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    closed_at: dt.datetime | None
    closed_reason: str | None


class AlertCount(BaseModel):
    #: Open alerts not yet acknowledged.
    unacknowledged: int


class SubscriptionIn(BaseModel):
    kind: SubscriptionKind
    #: An institution's name, an object type, or a case id.
    value: str = Field(min_length=1, max_length=500)


class SubscriptionOut(SubscriptionIn):
    id: int
    created_at: dt.datetime


class WebhookIn(BaseModel):
    #: http(s) URL that receives each new alert as a JSON POST; null removes it.
    url: str | None = Field(default=None, max_length=2000)


class WebhookOut(BaseModel):
    url: str | None


class RecheckOut(BaseModel):
    id: int
    object_id: str
    requested_by: str
    status: Literal["running", "succeeded", "failed"]
    listings: int
    without_features: int
    hits: int
    new_alerts: int
    seconds: float | None
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


class SightingOut(BaseModel):
    object_id: str
    source: str
    listing_id: str
    title: str | None
    url: str | None
    seller: str | None
    price: str | None
    listed_on: str | None
    confidence: float | None
    origin: str
    seen_at: dt.datetime


def _store(rt: Runtime) -> AlertStore:
    return AlertStore(rt.catalogue.engine)


def _out(a: AlertRecord) -> AlertOut:
    return AlertOut(**a.__dict__, object_url=object_url(a.object_id))


def _sighting_out(s: SightingRecord) -> SightingOut:
    return SightingOut(**{k: getattr(s, k) for k in SightingOut.model_fields})


def _recheck_out(r: RecheckRecord) -> RecheckOut:
    return RecheckOut(**r.__dict__)


# -- who sees what ------------------------------------------------------------------------


def _case_id(value: str) -> int:
    try:
        case = int(value)
    except ValueError:
        raise InvalidInput(f"a case is followed by its number, not {value!r}") from None
    if not 1 <= case < 2**63:
        raise InvalidInput(f"no case {case}")
    return case


def _alerts_for(
    rt: Runtime,
    *,
    account_id: int,
    role_may: Principal | None,
    open_only: bool = False,
    unacknowledged: bool = False,
) -> list[AlertRecord]:
    """The alerts the account's subscriptions fit, of the catalogues it may read."""
    store = _store(rt)
    subs = store.subscriptions(account_id)
    institutions = [s.value for s in subs if s.kind is SubscriptionKind.INSTITUTION]
    types = [s.value for s in subs if s.kind is SubscriptionKind.OBJECT_TYPE]
    cases = [_case_id(s.value) for s in subs if s.kind is SubscriptionKind.CASE]
    found = store.alerts(
        institutions=institutions,
        object_types=types,
        object_ids=store.watched_objects(cases),
        open_only=open_only,
        unacknowledged=unacknowledged,
    )
    if role_may is None:
        return found
    return [a for a in found if role_may.may_on(Action.READ_OBJECTS, a.institution)]


def list_alerts(
    rt: Runtime, principal: Principal, *, open_only: bool = False, unacknowledged: bool = False
) -> list[AlertOut]:
    return [
        _out(a)
        for a in _alerts_for(
            rt,
            account_id=principal.account.id,
            role_may=principal,
            open_only=open_only,
            unacknowledged=unacknowledged,
        )
    ]


def alert_count(rt: Runtime, principal: Principal) -> AlertCount:
    alerts = _alerts_for(
        rt, account_id=principal.account.id, role_may=principal, open_only=True, unacknowledged=True
    )
    return AlertCount(unacknowledged=len(alerts))


def acknowledge(rt: Runtime, principal: Principal, alert_id: int) -> AlertOut:
    mine = {a.id for a in _alerts_for(rt, account_id=principal.account.id, role_may=principal)}
    if alert_id not in mine:
        # Another's alert, or one of a catalogue the caller may not read: not even confirmed.
        raise NotFound(f"no alert {alert_id} among yours")
    alert = _store(rt).acknowledge(alert_id, by=principal.account.username)
    rt.audit.append(
        actor=principal.account.username,
        action="alert_ack",
        subject=f"object {alert.object_id}",
        details={"alert": alert.id, "listing": alert.listing_id, "source": alert.source},
    )
    return _out(alert)


# -- subscriptions and webhooks -----------------------------------------------------------


def _check_subscription(rt: Runtime, principal: Principal, body: SubscriptionIn) -> None:
    if body.kind is SubscriptionKind.INSTITUTION:
        if body.value not in {i.name for i in rt.queries.institutions()}:
            raise NotFound(f"no institution {body.value!r}")
        if not principal.may_on(Action.READ_OBJECTS, body.value):
            raise Forbidden(f"you may not read the catalogue of {body.value!r}")
    elif body.kind is SubscriptionKind.CASE:
        # Following a case one may not read would tell of its objects: the same 404.
        readable_case(rt, principal, _case_id(body.value))


def list_subscriptions(rt: Runtime, principal: Principal) -> list[SubscriptionOut]:
    return [
        SubscriptionOut(id=s.id, kind=s.kind, value=s.value, created_at=s.created_at)
        for s in _store(rt).subscriptions(principal.account.id)
    ]


def subscribe(rt: Runtime, principal: Principal, body: SubscriptionIn) -> SubscriptionOut:
    _check_subscription(rt, principal, body)
    sub = _store(rt).subscribe(account_id=principal.account.id, kind=body.kind, value=body.value)
    rt.audit.append(
        actor=principal.account.username,
        action="alert_subscribe",
        subject=f"{sub.kind.value} {sub.value}",
        details={"subscription": sub.id},
    )
    return SubscriptionOut(id=sub.id, kind=sub.kind, value=sub.value, created_at=sub.created_at)


def unsubscribe(rt: Runtime, principal: Principal, subscription_id: int) -> None:
    _store(rt).unsubscribe(account_id=principal.account.id, subscription_id=subscription_id)
    rt.audit.append(
        actor=principal.account.username,
        action="alert_unsubscribe",
        subject=f"subscription {subscription_id}",
    )


def _private_host(host: str) -> bool:
    """Whether ``host`` is or resolves to a loopback, private, link-local or reserved address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return True  # unresolvable: nothing to send to
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global or addr.is_multicast:
            return True
    return False


def _check_webhook_url(rt: Runtime, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(N_("a webhook is an http:// or https:// URL with a host"))
    if parts.username or parts.password:
        raise InvalidInput(N_("a webhook URL may not carry a user name or password"))
    if not rt.settings.alerts.webhook_allow_private and _private_host(parts.hostname):
        raise InvalidInput(
            f"{parts.hostname!r} is not a public address (ARTMATCH_ALERTS__WEBHOOK_ALLOW_PRIVATE)"
        )


def get_webhook(rt: Runtime, principal: Principal) -> WebhookOut:
    return WebhookOut(url=_store(rt).webhooks().get(principal.account.id))


def set_webhook(rt: Runtime, principal: Principal, body: WebhookIn) -> WebhookOut:
    url = (body.url or "").strip() or None
    if url is not None:
        _check_webhook_url(rt, url)
    _store(rt).set_webhook(account_id=principal.account.id, url=url)
    rt.audit.append(
        actor=principal.account.username,
        action="alert_webhook",
        subject=f"account {principal.account.username}",
        # The host only: a URL may carry a secret path.
        details={"host": urlsplit(url).hostname if url else None},
    )
    return WebhookOut(url=url)


def _post(url: str, payload: dict[str, object], *, timeout: float) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "artmatch-alerts"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (checked)
        response.read(1024)


def notify_alerts(rt: Runtime, alerts: Sequence[AlertRecord]) -> None:
    """POST each new alert to the webhook of every account it is for; a failing webhook is
    logged and skipped (the alert is in the UI all the same)."""
    if not alerts:
        return
    store = _store(rt)
    hooks = store.webhooks()
    for account_id, url in hooks.items():
        try:
            account = rt.accounts.get(account_id)
            if not account.active:
                continue
            theirs = {
                a.id
                for a in _alerts_for(rt, account_id=account_id, role_may=None)
                if may_on(account.role, account.institution, Action.ALERTS, a.institution)
                and may_on(account.role, account.institution, Action.READ_OBJECTS, a.institution)
            }
            for alert in alerts:
                if alert.id in theirs:
                    _check_webhook_url(rt, url)  # the address may have moved since
                    _post(
                        url,
                        {"event": "alert"} | _out(alert).model_dump(mode="json"),
                        timeout=rt.settings.alerts.webhook_timeout_s,
                    )
        except Exception as exc:  # noqa: BLE001 (one dead webhook must not stop the others)
            log.warning("webhook of account %s failed: %s", account_id, exc)


# -- re-checks and recovery ---------------------------------------------------------------


def _services(rt: Runtime) -> Services:
    deadline = time.monotonic() + _WAIT_FOR_SERVICES_S
    while True:
        try:
            return rt.require_services()
        except ArtmatchError:
            if time.monotonic() > deadline or rt.load_error:
                raise
            time.sleep(0.2)


def start_recheck(rt: Runtime, *, object_id: str, actor: str) -> RecheckOut:
    """Search every checked listing again for ``object_id`` in a background thread."""
    run = _store(rt).start_recheck(object_id=object_id, requested_by=actor)
    threading.Thread(
        target=lambda: finish_recheck(rt, None, run=run, object_id=object_id, actor=actor),
        name=f"recheck-{object_id}",
        daemon=True,
    ).start()
    return _recheck_out(run)


def finish_recheck(
    rt: Runtime,
    services: Services | None,
    *,
    run: RecheckRecord,
    object_id: str,
    actor: str,
) -> RecheckRecord:
    """Run the re-check ``run`` (of `AlertStore.start_recheck`) with ``services`` (None: the
    service's, once loaded), record its outcome, chain it, and send its new alerts to the
    webhooks. A failure is recorded on the run, never raised."""
    store = _store(rt)
    try:
        services = services or _services(rt)
        result = recheck_object(
            services, object_id, store=store, workers=rt.settings.alerts.recheck_workers
        )
    except Exception as exc:  # noqa: BLE001 (recorded on the run for the caller to see)
        log.exception("re-check of %s failed", object_id)
        message = str(exc) if isinstance(exc, ArtmatchError) else "internal error; see the log"
        return store.finish_recheck(run.id, status="failed", error=message)
    done = store.finish_recheck(
        run.id,
        status="succeeded",
        listings=result.listings,
        without_features=result.without_features,
        hits=len(result.hits),
        new_alerts=len(result.new_alerts),
        seconds=round(result.seconds, 3),
    )
    rt.audit.append(
        actor=actor,
        action="recheck",
        subject=f"object {object_id}",
        details={
            "recheck": done.id,
            "listings": done.listings,
            "hits": done.hits,
            "new_alerts": [a.id for a in result.new_alerts],
        },
    )
    notify_alerts(rt, result.new_alerts)
    return done


def close_alerts(rt: Runtime, *, object_id: str, actor: str, reason: str) -> int:
    closed = _store(rt).close_alerts_of(object_id, reason=reason)
    if closed:
        rt.audit.append(
            actor=actor,
            action="alerts_closed",
            subject=f"object {object_id}",
            details={"closed": closed, "reason": reason},
        )
    return closed


def on_status_change(rt: Runtime, *, object_id: str, status: ObjectStatus, actor: str) -> None:
    """What a new status means for alerts: a loss starts a re-check, a recovery closes them."""
    if status in LOST_STATUSES:
        start_recheck(rt, object_id=object_id, actor=actor)
    elif status is ObjectStatus.RECOVERED:
        close_alerts(rt, object_id=object_id, actor=actor, reason="recovered")


def list_rechecks(
    rt: Runtime, principal: Principal, *, object_id: str | None = None
) -> list[RecheckOut]:
    runs = _store(rt).rechecks(object_id=object_id)
    readable = {}
    out = []
    for r in runs:
        if r.object_id not in readable:
            try:
                inst = rt.queries.object_institution(r.object_id)
                readable[r.object_id] = principal.may_on(Action.READ_OBJECTS, inst)
            except NotFound:
                readable[r.object_id] = False
        if readable[r.object_id]:
            out.append(_recheck_out(r))
    return out


# -- sightings ----------------------------------------------------------------------------


def sightings(rt: Runtime, principal: Principal, object_id: str) -> list[SightingOut]:
    """Where and when an object was seen in listings (callers who may read it)."""
    if not principal.may_on(Action.READ_OBJECTS, rt.queries.object_institution(object_id)):
        raise NotFound(N_("no such object in the catalogues you may read"))
    return [_sighting_out(s) for s in _store(rt).sightings_of(object_id)]


def job_earlier_appearances(
    rt: Runtime, principal: Principal, report_json: Path
) -> dict[str, list[SightingOut]]:
    """`earlier_appearances` of the hits of a finished batch check's JSON report."""
    try:
        hits = json.loads(report_json.read_text(encoding="utf-8")).get("hits", [])
    except (OSError, ValueError):
        return {}
    return earlier_appearances(
        rt, principal, [(str(h["object_id"]), str(h["listing_id"])) for h in hits]
    )


def earlier_appearances(
    rt: Runtime,
    principal: Principal,
    hits: Sequence[tuple[str, str]],
) -> dict[str, list[SightingOut]]:
    """For each hit object of a batch check (``(object id, listing id)`` pairs), the other
    listings it was seen in: a re-listing after a sale shows here."""
    found = _store(rt).sightings_of_objects(o for o, _ in hits)
    this = {(o, listing) for o, listing in hits}
    out: dict[str, list[SightingOut]] = {}
    for object_id, seen in found.items():
        try:
            inst = rt.queries.object_institution(object_id)
        except NotFound:
            continue
        if not principal.may_on(Action.READ_OBJECTS, inst):
            continue
        others = [_sighting_out(s) for s in seen if (object_id, s.listing_id) not in this]
        if others:
            out[object_id] = others
    return out
