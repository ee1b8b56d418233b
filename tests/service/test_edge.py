"""The HTTP edge: every error a JSON body, ids bounded, chunked bodies held to the limit,
security headers, no server paths in messages, the error answers in the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kernel.errors import InvalidInput, StorageError
from kernel.settings import Settings, WebSettings
from models.embedders import FakeEmbedder
from service.errors import public_message
from service.main import create_app
from service.operations import accounts as account_ops
from tests.service.conftest import Api

TOO_BIG = 2**63  # one past the largest signed 64-bit integer the databases hold


def _json_error(r, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["message"] and body["error"]
    if code:
        assert body["error"] == code
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("who", "method", "url"),
    [
        ("inv", "GET", f"/api/v1/photos/{TOO_BIG}"),
        ("inv", "GET", f"/api/v1/photos/{TOO_BIG * 1000}/image"),
        ("inv", "GET", "/api/v1/photos/0/thumbnail"),
        ("inv", "GET", "/api/v1/photos/-1"),
        ("reg_a", "DELETE", f"/api/v1/photos/{TOO_BIG}"),
        ("inv", "GET", f"/api/v1/searches/{TOO_BIG}/evidence/1.png"),
        ("inv", "GET", f"/api/v1/searches/1/evidence/{TOO_BIG}.png"),
        ("inv", "DELETE", f"/api/v1/me/tokens/{TOO_BIG}"),
        ("admin", "POST", f"/api/v1/accounts/{TOO_BIG}/tokens"),
    ],
)
def test_ids_out_of_range_are_refused_as_json(api: Api, who: str, method: str, url: str) -> None:
    kwargs = {"json": {"name": "x"}} if method == "POST" else {}
    _json_error(api.as_(who, method, url, **kwargs), 422, "invalid_request")


def test_largest_id_is_a_plain_not_found(api: Api) -> None:
    _json_error(api.as_("inv", "GET", f"/api/v1/photos/{TOO_BIG - 1}"), 404, "not_found")


def test_unknown_urls_and_methods_answer_json(api: Api) -> None:
    _json_error(api.as_("inv", "GET", "/api/v1/nothing-here"), 404, "not_found")
    _json_error(api.as_("inv", "PUT", "/api/v1/objects"), 405, "method_not_allowed")


def test_an_unexpected_failure_is_a_json_500_without_details(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(user):  # type: ignore[no-untyped-def]
        raise RuntimeError("/srv/artmatch/secret.sqlite3 exploded")

    monkeypatch.setattr(account_ops, "whoami", broken)
    client = TestClient(api.client.app, raise_server_exceptions=False)
    body = _json_error(client.get("/api/v1/me", headers=api.headers("inv")), 500, "internal_error")
    assert "secret" not in body["message"] and "/srv" not in str(body)


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    # A generator body: httpx sends it chunked, with no Content-Length to refuse it by.
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size


def test_chunked_body_over_the_limit_is_413(api: Api) -> None:
    over = 4 * 1024 * 1024  # the test app's request limit is 3 MiB
    r = api.as_(
        "reg_a",
        "POST",
        "/api/v1/objects",
        content=_chunks(over),
        headers={"Content-Type": "application/json"},
    )
    _json_error(r, 413, "payload_too_large")
    r = api.as_(
        "reg_a",
        "POST",
        "/api/v1/objects/A-1/photos",
        content=_chunks(over),
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    _json_error(r, 413, "payload_too_large")
    # Under the limit a chunked body is read as usual.
    r = api.as_(
        "reg_a",
        "POST",
        "/api/v1/objects",
        content=iter([b'{"object_id": ', b'"A-1"}']),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text


def _assert_security_headers(r) -> None:  # type: ignore[no-untyped-def]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp


def test_security_headers_on_every_kind_of_response(api: Api) -> None:
    for r in (
        api.client.get("/api/v1/health"),
        api.client.get("/login"),
        api.client.get("/static/app.css"),
        api.as_("inv", "GET", "/api/v1/nothing-here"),
        api.client.get("/api/v1/me"),
        api.client.get("/api/docs"),
        api.as_("reg_a", "POST", "/api/v1/objects", content=b"x" * (4 * 1024 * 1024)),
    ):
        _assert_security_headers(r)
        assert "strict-transport-security" not in r.headers
    # The pages' scripts and styles are their own; inline script runs only on the docs page.
    assert "'unsafe-inline'" not in api.client.get("/login").headers["content-security-policy"]
    docs = api.client.get("/api/docs")
    assert "'unsafe-inline'" in docs.headers["content-security-policy"]


def test_the_api_docs_work_offline(api: Api) -> None:
    # Swagger UI's script and stylesheet come from the service itself, never a CDN.
    page = api.client.get("/api/docs")
    assert page.status_code == 200
    assert "http" not in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert api.client.get(source).status_code == 200, source
    assert api.client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg")
    assert 'rel="icon"' in api.client.get("/login").text


def test_hsts_only_when_configured(settings: Settings) -> None:
    app = create_app(settings, web=WebSettings(hsts_seconds=31536000), embedder=FakeEmbedder())
    r = TestClient(app).get("/api/v1/health")
    assert r.headers["strict-transport-security"] == "max-age=31536000"


def test_messages_never_show_server_paths() -> None:
    assert public_message(InvalidInput("/etc/passwd: no such file")) == "passwd: no such file"
    message = public_message(InvalidInput("/srv/data/manifests/lot-3.csv: missing image"))
    assert message == "lot-3.csv: missing image"
    # Relative names, blob keys and URLs stay as they are.
    assert public_message(InvalidInput("photos/ab/abc: x")) == "photos/ab/abc: x"
    assert "https://host/a/b" in public_message(InvalidInput("see https://host/a/b"))
    storage = StorageError("database error: (sqlite3.OperationalError) /srv/x.sqlite3 locked")
    assert "sqlite" not in public_message(storage)


def test_a_manifest_path_error_names_no_server_directory(api: Api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "deep" / "nowhere.csv"
    r = api.as_("analyst", "POST", "/api/v1/jobs", data={"manifest_path": str(missing)})
    assert 400 <= r.status_code < 500, r.text
    assert str(tmp_path) not in r.text


def test_nul_in_the_text_search_matches_nothing(api: Api) -> None:
    for oid in ("A-1", "A-2"):
        assert (
            api.as_("reg_a", "POST", "/api/v1/objects", json={"object_id": oid}).status_code == 201
        )
    for q in ("\0", "A\0", "%\0"):
        r = api.as_("inv", "GET", "/api/v1/objects", params={"q": q})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 0, q
    assert api.as_("inv", "GET", "/api/v1/objects", params={"q": "A-"}).json()["total"] == 2


def test_openapi_lists_the_error_answers_of_each_route(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()

    def codes(path: str, method: str) -> set[str]:
        return set(spec["paths"][path][method]["responses"])

    upload = codes("/api/v1/objects/{object_id}/photos", "post")
    assert {"401", "403", "404", "409", "413", "415", "422"} <= upload
    assert {"401", "403", "422"} <= codes("/api/v1/objects", "get")
    assert "404" not in codes("/api/v1/objects", "get")
    assert "415" not in codes("/api/v1/objects", "post")
    assert {"401", "403", "404", "422"} <= codes("/api/v1/photos/{photo_id}", "get")
    assert "401" not in codes("/api/v1/health", "get")
    error = spec["paths"]["/api/v1/photos/{photo_id}"]["get"]["responses"]["404"]
    ref = error["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorBody")
    assert {"error", "message"} <= set(spec["components"]["schemas"]["ErrorBody"]["required"])
    photo_id = spec["paths"]["/api/v1/photos/{photo_id}"]["get"]["parameters"][0]["schema"]
    assert photo_id["minimum"] == 1 and photo_id["maximum"] == 2**63 - 1
