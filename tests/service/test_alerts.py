"""Alerts through the real app: a theft reported after a listing was checked raises exactly
one alert (re-reporting adds none); a recovery closes it; subscriptions decide who sees it,
within the catalogues one may read; sightings on the object and job pages; webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.service.conftest import Api
from tests.utils.images import jpeg_bytes, photographed, textured_object

REG_A, REG_B, INV, AN = "reg_a", "reg_b", "inv", "analyst"


def _object(api: Api, who: str, object_id: str, seed: int, object_type: str) -> None:
    r = api.as_(
        who,
        "POST",
        "/api/v1/objects",
        json={"object_id": object_id, "title": object_id, "object_type": object_type},
    )
    assert r.status_code == 201, r.text
    files = [("files", ("p.jpg", jpeg_bytes(textured_object(seed)), "image/jpeg"))]
    r = api.as_(who, "POST", f"/api/v1/objects/{object_id}/photos", files=files)
    assert r.status_code == 201, r.text


def _check(api: Api, rows: list[tuple[str, int, int]], venue: str) -> dict:  # type: ignore[type-arg]
    """A batch check of (listing_id, object seed, photo seed) listings at ``venue``."""
    manifest = "listing_id,image,venue,price,seller,date\n" + "".join(
        f"{lid},{lid}.jpg,{venue},{100 * (n + 1)} EUR,seller{n},2026-0{n + 1}-01\n"
        for n, (lid, _, _) in enumerate(rows)
    )
    files = [("manifest", ("m.csv", manifest.encode(), "text/csv"))] + [
        ("images", (f"{lid}.jpg", jpeg_bytes(photographed(textured_object(s), p)), "image/jpeg"))
        for lid, s, p in rows
    ]
    r = api.as_(AN, "POST", "/api/v1/jobs", files=files)
    assert r.status_code == 202, r.text
    return _until(lambda: api.as_(AN, "GET", f"/api/v1/jobs/{r.json()['id']}").json(), "job")


def _until(fetch, what: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if value and (
            not isinstance(value, dict) or value.get("status") in ("succeeded", "failed")
        ):
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not finish")


def _report(api: Api, object_id: str, status: str) -> dict:  # type: ignore[type-arg]
    """Record ``status`` and wait for the re-check it starts, if any."""
    before = len(api.as_(INV, "GET", "/api/v1/rechecks", params={"object_id": object_id}).json())
    r = api.as_(REG_A, "POST", f"/api/v1/objects/{object_id}/status", json={"status": status})
    assert r.status_code == 200, r.text
    if status not in ("stolen", "missing"):
        return {}

    def done() -> dict | None:  # type: ignore[type-arg]
        runs = api.as_(INV, "GET", "/api/v1/rechecks", params={"object_id": object_id}).json()
        if len(runs) > before and runs[0]["status"] != "running":
            return runs[0]  # type: ignore[no-any-return]
        return None

    run = _until(done, "re-check")
    assert run["status"] == "succeeded", run
    return run  # type: ignore[no-any-return]


def _follow(api: Api, who: str, kind: str, value: str) -> int:
    r = api.as_(who, "POST", "/api/v1/alerts/subscriptions", json={"kind": kind, "value": value})
    return r.status_code


def _alerts(api: Api, who: str, **params: str) -> list[dict]:  # type: ignore[type-arg]
    r = api.as_(who, "GET", "/api/v1/alerts", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def checked(api: Api) -> Api:
    """Museum A's A-1 (painting) and Museum B's B-1 (painting), neither lost, and a batch
    check of three listings, one of them showing A-1 and one B-1."""
    _object(api, REG_A, "A-1", 1, "painting")
    _object(api, REG_A, "A-2", 2, "icon")
    _object(api, REG_B, "B-1", 3, "painting")
    job = _check(api, [("L1", 1, 5), ("L2", 40, 0), ("L3", 3, 6)], "house-a")
    assert job["status"] == "succeeded" and job["hits"] == 0, job
    return api


def test_a_theft_reported_after_the_check_raises_exactly_one_alert(checked: Api) -> None:
    api = checked
    assert _follow(api, INV, "institution", "Museum A") == 201
    assert _alerts(api, INV) == []

    run = _report(api, "A-1", "stolen")
    assert (run["listings"], run["hits"], run["new_alerts"]) == (3, 1, 1)
    alerts = _alerts(api, INV)
    assert [(a["object_id"], a["listing_id"], a["origin"]) for a in alerts] == [
        ("A-1", "L1", "recheck")
    ]
    assert alerts[0]["price"] == "100 EUR" and alerts[0]["acknowledged_at"] is None
    assert api.as_(INV, "GET", "/api/v1/alerts/count").json() == {"unacknowledged": 1}

    # Reported again: the listing is found again, and no second alert is raised.
    run = _report(api, "A-1", "missing")
    assert (run["hits"], run["new_alerts"]) == (1, 0)
    assert len(_alerts(api, INV)) == 1

    # Acknowledged: who and when, once.
    r = api.as_(INV, "POST", f"/api/v1/alerts/{alerts[0]['id']}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged_by"] == INV
    assert api.as_(INV, "GET", "/api/v1/alerts/count").json() == {"unacknowledged": 0}

    # The re-check is in the audit chain, with the alert it raised.
    entries = api.as_("auditor", "GET", "/api/v1/audit", params={"action": "recheck"}).json()
    assert [e["subject"] for e in entries["items"]] == ["object A-1", "object A-1"]
    assert entries["items"][-1]["details"]["new_alerts"] == [alerts[0]["id"]]
    acks = api.as_("auditor", "GET", "/api/v1/audit", params={"action": "alert_ack"}).json()
    assert acks["items"][0]["actor"] == INV


def test_a_recovered_object_raises_none_and_closes_its_alerts(checked: Api) -> None:
    api = checked
    assert _follow(api, AN, "object_type", "painting") == 201
    _report(api, "A-1", "stolen")
    assert [a["closed_at"] for a in _alerts(api, AN)] == [None]

    _report(api, "A-1", "recovered")
    alerts = _alerts(api, AN)
    assert len(alerts) == 1 and alerts[0]["closed_reason"] == "recovered"
    assert _alerts(api, AN, open_only="true") == []
    assert api.as_(AN, "GET", "/api/v1/alerts/count").json() == {"unacknowledged": 0}
    # The history stays: the object was seen in L1.
    seen = api.as_(AN, "GET", "/api/v1/objects/A-1/sightings").json()
    assert [s["listing_id"] for s in seen] == ["L1"]

    # A recovered object is not searched for: a new listing of it raises nothing.
    job = _check(api, [("L9", 1, 8)], "house-b")
    assert job["hits"] == 0
    assert len(_alerts(api, AN)) == 1


def test_subscriptions_filter_alerts_within_what_one_may_read(checked: Api) -> None:
    api = checked
    assert _follow(api, INV, "institution", "Museum B") == 201
    assert _follow(api, AN, "object_type", "icon") == 201
    assert _follow(api, REG_A, "object_type", "painting") == 201
    # A registrar follows only their own institution's catalogue.
    assert _follow(api, REG_B, "institution", "Museum A") == 403
    assert _follow(api, REG_B, "institution", "Museum B") == 201
    assert _follow(api, INV, "institution", "Museum Z") == 404
    assert _follow(api, INV, "case", "not-a-number") == 422
    # Auditors and admins do not follow alerts.
    assert _follow(api, "auditor", "institution", "Museum A") == 403

    _report(api, "A-1", "stolen")
    api.as_(REG_B, "POST", "/api/v1/objects/B-1/status", json={"status": "stolen"})
    _until(
        lambda: [
            r
            for r in api.as_(INV, "GET", "/api/v1/rechecks", params={"object_id": "B-1"}).json()
            if r["status"] != "running"
        ],
        "re-check of B-1",
    )

    def seen(who: str) -> list[str]:
        return sorted(a["object_id"] for a in _alerts(api, who))

    assert seen(INV) == ["B-1"]  # Museum B only
    assert seen(AN) == []  # icons: none raised
    assert seen(REG_A) == ["A-1"]  # paintings, of Museum A only
    assert seen(REG_B) == ["B-1"]
    # Another's alert (or one of a catalogue one may not read) cannot be acknowledged.
    a1 = _alerts(api, REG_A)[0]["id"]
    assert api.as_(REG_B, "POST", f"/api/v1/alerts/{a1}/acknowledge").status_code == 404
    assert api.as_(REG_B, "GET", "/api/v1/objects/A-1/sightings").status_code == 404

    # A case follows objects: its subscribers get their alerts.
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    from storage.catalogue.alerts import AlertStore

    case = api.as_(INV, "POST", "/api/v1/cases", json={"reference": "P-9", "title": "icons"})
    case_id = str(case.json()["id"])
    AlertStore(runtime.catalogue.engine).watch(case_id=int(case_id), object_id="A-1")
    # Only a case one may read can be followed: the analyst must be shared it first.
    assert _follow(api, AN, "case", case_id) == 404
    api.as_(INV, "POST", f"/api/v1/cases/{case_id}/shares", json={"username": AN})
    assert _follow(api, AN, "case", case_id) == 201
    assert seen(AN) == ["A-1"]
    subs = api.as_(AN, "GET", "/api/v1/alerts/subscriptions").json()
    assert {(s["kind"], s["value"]) for s in subs} == {("object_type", "icon"), ("case", case_id)}
    r = api.as_(AN, "DELETE", f"/api/v1/alerts/subscriptions/{subs[-1]['id']}")
    assert r.status_code == 200 and seen(AN) == []


def test_a_batch_check_sends_its_new_alerts_to_the_webhooks(
    checked: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.operations.alerts

    api = checked
    posted: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    monkeypatch.setattr(
        service.operations.alerts,
        "_post",
        lambda url, payload, *, timeout: posted.append((url, payload)),
    )
    monkeypatch.setattr(service.operations.alerts, "_private_host", lambda host: False)
    _follow(api, INV, "institution", "Museum A")
    r = api.as_(INV, "PUT", "/api/v1/alerts/webhook", json={"url": "https://hooks.example/a"})
    assert r.status_code == 200, r.text
    _report(api, "A-2", "missing")  # nothing checked shows A-2 yet: no alert
    assert posted == []
    job = _check(api, [("L7", 2, 9)], "house-b")  # a new listing showing it
    assert job["status"] == "succeeded" and job["hits"] == 1, job
    assert [(u, p["object_id"], p["listing_id"]) for u, p in posted] == [
        ("https://hooks.example/a", "A-2", "L7")
    ]


def test_pages_show_alerts_sightings_and_earlier_appearances(checked: Api) -> None:
    api = checked
    _follow(api, INV, "institution", "Museum A")
    _report(api, "A-1", "stolen")
    page = api.as_(INV, "GET", "/alerts")
    assert page.status_code == 200
    assert 'id="alert-count">1<' in page.text and "L1" in page.text
    assert "Seen in listings" in api.as_(INV, "GET", "/objects/A-1").text
    assert "L1" in api.as_(INV, "GET", "/objects/A-1").text

    # The same object listed again at another venue: the job page shows where it was before.
    job = _check(api, [("R7", 1, 9)], "house-b")
    assert job["hits"] == 1
    text = api.as_(AN, "GET", f"/jobs/{job['id']}").text
    assert "Earlier appearances" in text and "house-a" in text and "L1" in text
    assert len(_alerts(api, INV)) == 2  # the new listing raised its own alert


def test_webhook_urls_are_checked(api: Api) -> None:
    r = api.as_(INV, "PUT", "/api/v1/alerts/webhook", json={"url": "ftp://example.org/x"})
    assert r.status_code == 422 and "http" in r.json()["message"]
    r = api.as_(INV, "PUT", "/api/v1/alerts/webhook", json={"url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 422 and "not a public address" in r.json()["message"]
    r = api.as_(INV, "PUT", "/api/v1/alerts/webhook", json={"url": "http://u:p@example.org/"})
    assert r.status_code == 422


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []  # type: ignore[type-arg]  # noqa: RUF012

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[dict]]]:  # type: ignore[type-arg]
    received: list[dict] = []  # type: ignore[type-arg]
    handler = type("Hook", (_Hook,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_a_new_alert_is_posted_to_the_webhook(
    checked: Api,
    hook_server: tuple[str, list[dict]],  # type: ignore[type-arg]
) -> None:
    api = checked
    url, received = hook_server
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    runtime.settings = runtime.settings.model_copy(
        update={
            "alerts": runtime.settings.alerts.model_copy(update={"webhook_allow_private": True})
        }
    )
    _follow(api, INV, "institution", "Museum A")
    _follow(api, AN, "object_type", "icon")
    for who in (INV, AN):
        r = api.as_(who, "PUT", "/api/v1/alerts/webhook", json={"url": url})
        assert r.status_code == 200, r.text
    _report(api, "A-1", "stolen")
    # Posted from the re-check's thread, after the run was recorded: wait for it.
    _until(lambda: list(received), "webhook", timeout=10)
    time.sleep(0.2)
    assert [(m["event"], m["object_id"], m["listing_id"]) for m in received] == [
        ("alert", "A-1", "L1")
    ]  # once: to the investigator, not to the analyst following icons
