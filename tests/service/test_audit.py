"""Searches belong to their author, the admin and the auditor; every search, evidence fetch,
token, account, password and catalogue change is in the audit chain, which the auditor checks
on the API, the page and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from kernel.enums import Role
from kernel.settings import Settings
from service.security import new_token
from tests.service.conftest import Api, password_hash
from tests.utils.images import jpeg_bytes, photographed, textured_object

REG, INV, AUD, ADM = "reg_a", "inv", "auditor", "admin"


def _runtime(api: Api):  # type: ignore[no-untyped-def]
    return api.client.app.state.runtime  # type: ignore[attr-defined]


def _second_investigator(api: Api) -> None:
    accounts = _runtime(api).accounts
    account = accounts.create_account(
        username="inv2", password_hash=password_hash(), role=Role.INVESTIGATOR, institution=None
    )
    token, digest = new_token()
    accounts.add_token(account_id=account.id, name="test", token_sha256=digest)
    api.tokens["inv2"] = token


def _search(api: Api, who: str = INV, case: str = "CASE-1") -> dict:  # type: ignore[type-arg]
    query = jpeg_bytes(photographed(textured_object(2), seed=5))
    r = api.as_(
        who,
        "POST",
        "/api/v1/searches",
        files={"file": ("q.jpg", query, "image/jpeg")},
        data={"case_reference": case},
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def searched(api: Api) -> tuple[Api, dict]:  # type: ignore[type-arg]
    r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": "A-2", "title": "Vase"})
    assert r.status_code == 201, r.text
    files = {"files": ("a.jpg", jpeg_bytes(textured_object(2)), "image/jpeg")}
    assert api.as_(REG, "POST", "/api/v1/objects/A-2/photos", files=files).status_code == 201
    _second_investigator(api)
    result = _search(api, INV, "CASE-SECRET")
    assert result["hits"][0]["verified"], result
    return api, result


def _chain(api: Api, **params: str) -> list[dict]:  # type: ignore[type-arg]
    r = api.as_(AUD, "GET", "/api/v1/audit", params={"page_size": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def test_evidence_belongs_to_the_author_admin_and_auditor(searched) -> None:  # type: ignore[no-untyped-def]
    api, result = searched
    url = result["hits"][0]["evidence_url"]
    assert api.as_(INV, "GET", url).status_code == 200
    # Another investigator is told the search does not exist, as for an unknown id.
    other = api.as_("inv2", "GET", url)
    assert other.status_code == 404 and other.json()["error"] == "not_found"
    assert "CASE-SECRET" not in other.text
    unknown = api.as_("inv2", "GET", f"/api/v1/searches/{result['search_id'] + 1}/evidence/1.png")
    assert unknown.json()["message"].replace(str(result["search_id"] + 1), "N") == other.json()[
        "message"
    ].replace(str(result["search_id"]), "N")
    for who in (ADM, AUD):
        r = api.as_(who, "GET", url)
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), who
    # Each fetch that got the picture is in the chain, with the search's author.
    fetches = _chain(api, action="evidence")
    assert sorted(e["actor"] for e in fetches) == sorted([INV, ADM, AUD])
    assert all(e["details"]["author"] == INV for e in fetches)
    assert all(e["subject"] == f"search {result['search_id']}" for e in fetches)


def test_searches_and_token_minting_are_chained(searched) -> None:  # type: ignore[no-untyped-def]
    api, result = searched
    inv_id = next(
        a["id"] for a in api.as_(ADM, "GET", "/api/v1/accounts").json() if a["username"] == INV
    )
    r = api.as_(ADM, "POST", f"/api/v1/accounts/{inv_id}/tokens", json={"name": "as inv"})
    assert r.status_code == 201
    minted = r.json()["token"]
    # The admin now searches as the investigator: logged as the investigator, but the
    # minting sits in the chain, naming both.
    search = api.client.post(
        "/api/v1/searches",
        headers={"Authorization": f"Bearer {minted}"},
        files={"file": ("q.jpg", jpeg_bytes(textured_object(7)), "image/jpeg")},
    )
    assert search.status_code == 200
    api.as_(INV, "POST", "/api/v1/me/tokens", json={"name": "own"})

    tokens = _chain(api, action="token_create")
    assert [(e["actor"], e["details"]["for"]) for e in tokens] == [(INV, INV), (ADM, INV)]
    searches = _chain(api, action="search")
    assert [e["details"]["search_id"] for e in searches] == [
        search.json()["search_id"],
        result["search_id"],
    ]
    assert searches[-1]["details"]["case_reference"] == "CASE-SECRET"
    assert searches[-1]["details"]["via"] == "api"
    status = api.as_(AUD, "GET", "/api/v1/audit/verify").json()
    assert status["ok"] and status["entries"] >= 6


def test_account_and_catalogue_changes_record_who(api: Api) -> None:
    api.as_(REG, "POST", "/api/v1/objects", json={"object_id": "A-1"})
    api.as_(REG, "PATCH", "/api/v1/objects/A-1", json={"title": "Jug"})
    api.as_(REG, "POST", "/api/v1/objects/A-1/status", json={"status": "stolen"})
    files = {"files": ("a.jpg", jpeg_bytes(textured_object(1)), "image/jpeg")}
    photo = api.as_(REG, "POST", "/api/v1/objects/A-1/photos", files=files).json()[0]["photo"]
    api.as_(REG, "DELETE", f"/api/v1/photos/{photo['id']}")
    api.as_(REG, "DELETE", "/api/v1/objects/A-1")
    new = api.as_(
        ADM,
        "POST",
        "/api/v1/accounts",
        json={"username": "inv3", "password": "long enough pw", "role": "investigator"},
    ).json()
    api.as_(ADM, "PATCH", f"/api/v1/accounts/{new['id']}", json={"role": "analyst"})
    api.as_(ADM, "PATCH", f"/api/v1/accounts/{new['id']}", json={"password": "another long pw"})

    chain = list(reversed(_chain(api)))
    assert [(e["actor"], e["action"], e["subject"]) for e in chain] == [
        (REG, "object_create", "object A-1"),
        (REG, "object_update", "object A-1"),
        (REG, "object_status", "object A-1"),
        (REG, "photo_add", "object A-1"),
        (REG, "photo_delete", "object A-1"),
        (REG, "object_delete", "object A-1"),
        (ADM, "account_create", "account inv3"),
        (ADM, "account_update", "account inv3"),
        (ADM, "password_reset", "account inv3"),
    ]
    assert chain[1]["details"] == {"fields": ["title"]}
    assert chain[2]["details"]["status"] == "stolen"
    assert chain[7]["details"] == {"role": ["investigator", "analyst"]}


def test_tampering_shows_on_the_api_the_page_and_the_cli(
    searched, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    api, result = searched
    r = api.client.post("/login", data={"username": AUD, "password": "correct horse battery"})
    assert r.status_code == 200
    page = api.client.get("/audit", headers={"Accept": "text/html"}).text
    assert "Audit chain intact" in page and "token_create" not in page
    assert _cli_verify(settings).exit_code == 0

    with _runtime(api).accounts.engine.begin() as conn:
        conn.execute(
            text("UPDATE search_log SET case_reference = 'HIDDEN' WHERE id = :i"),
            {"i": result["search_id"]},
        )
    status = api.as_(AUD, "GET", "/api/v1/audit/verify").json()
    assert not status["ok"] and f"search {result['search_id']} was changed" in status["problem"]
    page = api.client.get("/audit", headers={"Accept": "text/html"}).text
    assert "Audit chain BROKEN" in page
    broken = _cli_verify(settings)
    assert broken.exit_code == 1 and "chain broken at entry" in broken.output


def _cli_verify(settings: Settings):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli_app, ["--home", str(settings.home), "audit", "verify"])


def test_cli_search_is_logged_and_chained(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kernel.settings import get_settings

    monkeypatch.setenv("ARTMATCH_EMBEDDER__NAME", "fake")
    monkeypatch.setenv("LOGNAME", "detective")
    monkeypatch.setenv("USER", "detective")
    get_settings.cache_clear()
    photo = tmp_path / "q.jpg"
    photo.write_bytes(jpeg_bytes(textured_object(4)))
    try:
        runner = CliRunner()
        home = ["--home", str(settings.home)]
        r = runner.invoke(cli_app, [*home, "search", str(photo), "--case-reference", "C-77"])
        assert r.exit_code == 0, r.output
        r = runner.invoke(cli_app, [*home, "audit", "log"])
        assert r.exit_code == 0 and "cli:detective" in r.output and "C-77" in r.output
        r = runner.invoke(cli_app, [*home, "audit", "verify"])
        assert r.exit_code == 0 and "chain intact: 1 entries" in r.output
    finally:
        get_settings.cache_clear()
    from storage.catalogue import create_catalogue
    from storage.catalogue.search_log import SearchLog

    catalogue = create_catalogue(settings.database_url)
    try:
        rows, total = SearchLog(catalogue.engine).search_log(offset=0, limit=5)
    finally:
        catalogue.close()
    assert total == 1 and rows[0].username == "cli:detective"
    assert rows[0].case_reference == "C-77" and rows[0].account_id is None


def test_a_batch_job_is_one_chain_entry_for_its_analyst(api: Api) -> None:
    import time

    manifest = b"listing_id,image\nL1,one.jpg\nL2,two.jpg\n"
    files = [
        ("manifest", ("listings.csv", manifest, "text/csv")),
        ("images", ("one.jpg", jpeg_bytes(textured_object(1)), "image/jpeg")),
        ("images", ("two.jpg", jpeg_bytes(textured_object(2)), "image/jpeg")),
    ]
    r = api.as_("analyst", "POST", "/api/v1/jobs", files=files)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entries = _chain(api, action="listing_check")
        if entries:
            break
        time.sleep(0.05)
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["actor"] == "analyst" and entry["subject"] == f"job {job_id}"
    assert entry["details"]["listings"] == 2 and entry["details"]["checked"] == 2
    assert len(entry["details"]["manifest_sha256"]) == 64


def test_cli_token_creation_is_chained(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.catalogue import create_catalogue
    from storage.catalogue.accounts import Accounts
    from storage.catalogue.audit import AuditLog

    monkeypatch.setenv("LOGNAME", "operator")
    catalogue = create_catalogue(settings.database_url)
    try:
        Accounts(catalogue.engine).create_account(
            username="inv", password_hash=None, role=Role.INVESTIGATOR, institution=None
        )
        r = CliRunner().invoke(cli_app, ["--home", str(settings.home), "create-token", "inv"])
        assert r.exit_code == 0, r.output
        entries, _ = AuditLog(catalogue.engine).entries(offset=0, limit=5)
    finally:
        catalogue.close()
    assert [(e.actor, e.action, e.details["for"]) for e in entries] == [
        ("cli:operator", "token_create", "inv")
    ]


def test_a_page_search_is_logged_as_such(api: Api) -> None:
    r = api.client.post("/login", data={"username": INV, "password": "correct horse battery"})
    assert r.status_code == 200
    page = api.client.get("/search", headers={"Accept": "text/html"}).text
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    r = api.client.post(
        "/search",
        data={"csrf_token": csrf, "case_reference": "PAGE-1", "scope": "all"},
        files={"file": ("q.jpg", jpeg_bytes(textured_object(3)), "image/jpeg")},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 200, r.text
    [entry] = _chain(api, action="search")
    assert entry["actor"] == INV and entry["details"]["via"] == "page"
    assert entry["details"]["case_reference"] == "PAGE-1"
