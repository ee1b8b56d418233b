"""The role matrix: every API route refuses an anonymous caller (401) and every role it does
not name (403). The matrix must cover every route the app has."""

from __future__ import annotations

import pytest

from tests.service.conftest import ACCOUNTS, Api
from tests.utils.images import jpeg_bytes, textured_object

REG, INV, AN, ADM, AUD = "reg_a", "inv", "analyst", "admin", "auditor"
EVERYONE = {REG, INV, AN, ADM, AUD}
READERS = {REG, INV, AN}
#: Those who use cases (which cases each sees is `service.policy.case_access`'s to say).
CASES = {INV, AN, ADM, AUD}

#: (method, path template, concrete path, roles allowed)
MATRIX = [
    ("GET", "/api/v1/me", "/api/v1/me", EVERYONE),
    ("GET", "/api/v1/me/tokens", "/api/v1/me/tokens", EVERYONE),
    ("POST", "/api/v1/me/tokens", "/api/v1/me/tokens", EVERYONE),
    ("DELETE", "/api/v1/me/tokens/{token_id}", "/api/v1/me/tokens/999", EVERYONE),
    ("POST", "/api/v1/me/password", "/api/v1/me/password", EVERYONE),
    ("GET", "/api/v1/accounts", "/api/v1/accounts", {ADM}),
    ("POST", "/api/v1/accounts", "/api/v1/accounts", {ADM}),
    ("PATCH", "/api/v1/accounts/{account_id}", "/api/v1/accounts/1", {ADM}),
    ("POST", "/api/v1/accounts/{account_id}/tokens", "/api/v1/accounts/1/tokens", {ADM}),
    ("GET", "/api/v1/institutions", "/api/v1/institutions", {REG, INV, AN, ADM}),
    ("POST", "/api/v1/institutions", "/api/v1/institutions", {ADM}),
    ("DELETE", "/api/v1/institutions/{name}", "/api/v1/institutions/Nowhere", {ADM}),
    ("GET", "/api/v1/objects", "/api/v1/objects", READERS),
    ("POST", "/api/v1/objects", "/api/v1/objects", {REG}),
    ("GET", "/api/v1/objects/{object_id}", "/api/v1/objects/A-1", READERS),
    ("PATCH", "/api/v1/objects/{object_id}", "/api/v1/objects/A-1", {REG}),
    ("DELETE", "/api/v1/objects/{object_id}", "/api/v1/objects/A-1", {REG}),
    ("POST", "/api/v1/objects/{object_id}/status", "/api/v1/objects/A-1/status", {REG}),
    ("GET", "/api/v1/objects/{object_id}/photos", "/api/v1/objects/A-1/photos", READERS),
    ("POST", "/api/v1/objects/{object_id}/photos", "/api/v1/objects/A-1/photos", {REG}),
    ("POST", "/api/v1/objects/with-photos", "/api/v1/objects/with-photos", {REG}),
    ("GET", "/api/v1/photos/{photo_id}", "/api/v1/photos/1", READERS),
    ("GET", "/api/v1/photos/{photo_id}/image", "/api/v1/photos/1/image", READERS),
    ("GET", "/api/v1/photos/{photo_id}/thumbnail", "/api/v1/photos/1/thumbnail", READERS),
    ("DELETE", "/api/v1/photos/{photo_id}", "/api/v1/photos/1", {REG}),
    ("POST", "/api/v1/searches", "/api/v1/searches", {INV}),
    ("GET", "/api/v1/searches", "/api/v1/searches", {AUD}),
    ("GET", "/api/v1/searches.csv", "/api/v1/searches.csv", {AUD}),
    (
        "GET",
        "/api/v1/jobs/{job_id}/listing-photo",
        "/api/v1/jobs/j1/listing-photo?image=a.jpg",
        {AN, ADM},
    ),
    (
        "GET",
        "/api/v1/jobs/{job_id}/evidence",
        "/api/v1/jobs/j1/evidence?image=a.jpg&object_id=A-1",
        {AN, ADM},
    ),
    (
        "GET",
        "/api/v1/searches/{search_id}/evidence/{photo_id}.png",
        "/api/v1/searches/1/evidence/1.png",
        {INV, ADM, AUD},
    ),
    (
        "GET",
        "/api/v1/searches/{search_id}/report.{fmt}",
        "/api/v1/searches/1/report.pdf",
        {INV, ADM, AUD},
    ),
    ("POST", "/api/v1/reports/verify", "/api/v1/reports/verify", EVERYONE),
    ("GET", "/api/v1/audit", "/api/v1/audit", {AUD}),
    ("GET", "/api/v1/audit/verify", "/api/v1/audit/verify", {AUD}),
    ("POST", "/api/v1/jobs", "/api/v1/jobs", {AN}),
    ("GET", "/api/v1/jobs", "/api/v1/jobs", {AN, ADM}),
    ("GET", "/api/v1/jobs/{job_id}", "/api/v1/jobs/nope", {AN, ADM}),
    ("GET", "/api/v1/jobs/{job_id}/report.csv", "/api/v1/jobs/nope/report.csv", {AN, ADM}),
    ("GET", "/api/v1/jobs/{job_id}/report.json", "/api/v1/jobs/nope/report.json", {AN, ADM}),
    ("GET", "/api/v1/cases", "/api/v1/cases", CASES),
    ("POST", "/api/v1/cases", "/api/v1/cases", {INV}),
    ("GET", "/api/v1/cases/{case_id}", "/api/v1/cases/999", CASES),
    ("PATCH", "/api/v1/cases/{case_id}", "/api/v1/cases/999", CASES),
    ("GET", "/api/v1/cases/{case_id}/shares", "/api/v1/cases/999/shares", CASES),
    ("POST", "/api/v1/cases/{case_id}/shares", "/api/v1/cases/999/shares", CASES),
    (
        "DELETE",
        "/api/v1/cases/{case_id}/shares/{username}",
        "/api/v1/cases/999/shares/inv",
        CASES,
    ),
    ("POST", "/api/v1/cases/{case_id}/searches", "/api/v1/cases/999/searches", CASES),
    ("GET", "/api/v1/cases/{case_id}/decisions", "/api/v1/cases/999/decisions", CASES),
    ("POST", "/api/v1/cases/{case_id}/decisions", "/api/v1/cases/999/decisions", CASES),
    ("GET", "/api/v1/cases/{case_id}/report.{fmt}", "/api/v1/cases/999/report.pdf", CASES),
    (
        "GET",
        "/api/v1/cases/{case_id}/searches/{search_id}/query.jpg",
        "/api/v1/cases/999/searches/1/query.jpg",
        CASES,
    ),
    (
        "GET",
        "/api/v1/cases/{case_id}/searches/{search_id}/evidence/{photo_id}.png",
        "/api/v1/cases/999/searches/1/evidence/1.png",
        CASES,
    ),
    ("GET", "/api/v1/alerts", "/api/v1/alerts", READERS),
    ("GET", "/api/v1/alerts/count", "/api/v1/alerts/count", READERS),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge", "/api/v1/alerts/1/acknowledge", READERS),
    ("GET", "/api/v1/alerts/subscriptions", "/api/v1/alerts/subscriptions", READERS),
    ("POST", "/api/v1/alerts/subscriptions", "/api/v1/alerts/subscriptions", READERS),
    (
        "DELETE",
        "/api/v1/alerts/subscriptions/{subscription_id}",
        "/api/v1/alerts/subscriptions/1",
        READERS,
    ),
    ("GET", "/api/v1/alerts/webhook", "/api/v1/alerts/webhook", READERS),
    ("PUT", "/api/v1/alerts/webhook", "/api/v1/alerts/webhook", READERS),
    ("GET", "/api/v1/rechecks", "/api/v1/rechecks", READERS),
    (
        "GET",
        "/api/v1/objects/{object_id}/sightings",
        "/api/v1/objects/A-1/sightings",
        READERS,
    ),
]
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/ready"),
    # Anyone may check a report: the public key is published.
    ("GET", "/api/v1/reports/public-key"),
}


@pytest.fixture
def seeded(api: Api) -> Api:
    r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": "A-1", "title": "Vase"})
    assert r.status_code == 201, r.text
    files = {"files": ("a.jpg", jpeg_bytes(textured_object(1)), "image/jpeg")}
    r = api.as_(REG, "POST", "/api/v1/objects/A-1/photos", files=files)
    assert r.status_code == 201, r.text
    return api


def test_matrix_covers_every_api_route(api: Api) -> None:
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert routes == {(m, t) for m, t, _, _ in MATRIX} | PUBLIC


def test_anonymous_gets_401(api: Api) -> None:
    for method, _, path, _ in MATRIX:
        r = api.client.request(method, path)
        assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text}"
        assert r.json()["error"] == "unauthenticated"


def test_other_roles_get_403_and_named_roles_pass(seeded: Api) -> None:
    # One app for the whole matrix keeps this fast; the messages name the failing cell.
    for method, _, path, allowed in MATRIX:
        for who in sorted(set(ACCOUNTS) - allowed - {"reg_b"}):
            r = seeded.as_(who, method, path)
            assert r.status_code == 403, f"{who} {method} {path}: {r.status_code} {r.text}"
            assert r.json()["error"] == "forbidden"
    # Allowed roles get past the role check (the reply may still be 404/422 for the dummy
    # ids and empty bodies used here, never 401/403). Deleting runs last.
    for method, _, path, allowed in sorted(MATRIX, key=lambda m: m[0] == "DELETE"):
        for who in sorted(allowed):
            r = seeded.as_(who, method, path)
            assert r.status_code not in (401, 403, 500), f"{who} {method} {path}: {r.text}"


def test_bad_token_is_401(api: Api) -> None:
    r = api.client.get("/api/v1/me", headers={"Authorization": "Bearer am_nope"})
    assert r.status_code == 401


def test_registrar_is_confined_to_own_institution(seeded: Api) -> None:
    # Another institution's registrar neither sees nor changes Museum A's object.
    assert seeded.as_("reg_b", "GET", "/api/v1/objects/A-1").status_code == 404
    assert seeded.as_("reg_b", "GET", "/api/v1/photos/1/image").status_code == 404
    r = seeded.as_("reg_b", "POST", "/api/v1/objects/A-1/status", json={"status": "stolen"})
    assert r.status_code == 404
    assert seeded.as_("reg_b", "GET", "/api/v1/objects").json()["total"] == 0
    r = seeded.as_("reg_b", "GET", "/api/v1/objects", params={"institution": "Museum A"})
    assert r.status_code == 403
    r = seeded.as_(
        "reg_b", "POST", "/api/v1/objects", json={"object_id": "B-1", "institution": "Museum A"}
    )
    assert r.status_code == 403
    # Investigators read everything, loss details included, but cannot edit.
    seeded.as_(
        REG, "POST", "/api/v1/objects/A-1/status", json={"status": "stolen", "reference": "POL-7"}
    )
    obj = seeded.as_(INV, "GET", "/api/v1/objects/A-1").json()
    assert obj["loss_reference"] == "POL-7"
    assert seeded.as_(INV, "PATCH", "/api/v1/objects/A-1", json={"title": "x"}).status_code == 403


def test_pages_redirect_anonymous_and_refuse_wrong_role(api: Api) -> None:
    html = {"Accept": "text/html"}
    r = api.client.get("/objects", headers=html, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = api.client.post(
        "/login",
        data={"username": "auditor", "password": "correct horse battery"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/audit"
    assert api.client.get("/audit", headers=html).status_code == 200
    r = api.client.get("/search", headers=html)
    assert r.status_code == 403 and "investigator" in r.text
