"""Cases through the real app: who sees and changes them, searches and batch checks attached
to them, review decisions and their history, the case pages, and the audit chain."""

from __future__ import annotations

import re
import time

import pytest

from kernel.enums import Role
from service.security import new_token
from tests.service.conftest import PASSWORD, Api, password_hash
from tests.utils.images import jpeg_bytes, photographed, textured_object

REG, INV, AN, ADM, AUD = "reg_a", "inv", "analyst", "admin", "auditor"
INV2 = "inv2"


@pytest.fixture
def cases_api(api: Api) -> Api:
    """The accounts of every role, plus a second investigator."""
    accounts = api.client.app.state.runtime.accounts  # type: ignore[attr-defined]
    account = accounts.create_account(
        username=INV2, password_hash=password_hash(), role=Role.INVESTIGATOR, institution=None
    )
    token, digest = new_token()
    accounts.add_token(account_id=account.id, name="test", token_sha256=digest)
    api.tokens[INV2] = token
    return api


def _open(api: Api, who: str = INV, reference: str = "POL-1", **fields: str) -> dict:
    body = {"reference": reference, "title": "Stolen icons", **fields}
    r = api.as_(who, "POST", "/api/v1/cases", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _catalogue(api: Api, n: int = 3) -> None:
    for i in range(n):
        r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": f"A-{i}"})
        assert r.status_code == 201, r.text
        files = {"files": (f"{i}.jpg", jpeg_bytes(textured_object(i)), "image/jpeg")}
        r = api.as_(REG, "POST", f"/api/v1/objects/A-{i}/photos", files=files)
        assert r.status_code == 201, r.text


def _search(api: Api, who: str = INV, *, case_id: int | None = None, seed: int = 1) -> dict:
    data: dict[str, object] = {} if case_id is None else {"case_id": str(case_id)}
    query = jpeg_bytes(photographed(textured_object(seed), seed=5))
    r = api.as_(
        who, "POST", "/api/v1/searches", files={"file": ("q.jpg", query, "image/jpeg")}, data=data
    )
    return r.json() | {"_status": r.status_code}


def test_permissions_follow_the_rules(cases_api: Api) -> None:
    api = cases_api
    case = _open(api, notes="first lead")
    url = f"/api/v1/cases/{case['id']}"
    assert case["owner"] == INV and case["access"] == "write" and case["notes"] == "first lead"

    # author, admin and auditor see it; the auditor only reads
    for who, access in ((INV, "write"), (ADM, "write"), (AUD, "read")):
        r = api.as_(who, "GET", url)
        assert r.status_code == 200 and r.json()["access"] == access, (who, r.text)
    r = api.as_(AUD, "PATCH", url, json={"notes": "x"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"

    # another investigator and an analyst: as if it did not exist (ids are sequential)
    for who in (INV2, AN):
        for method, path, body in (
            ("GET", url, None),
            ("PATCH", url, {"notes": "x"}),
            ("GET", f"{url}/decisions", None),
            ("POST", f"{url}/shares", {"username": INV2}),
        ):
            r = api.as_(who, method, path, json=body)
            assert r.status_code == 404, (who, method, path, r.text)
            assert r.json()["message"] == f"no case {case['id']}"
        assert api.as_(who, "GET", "/api/v1/cases").json()["total"] == 0
    missing = api.as_(INV2, "GET", "/api/v1/cases/999")
    assert missing.status_code == 404 and missing.json()["message"] == "no case 999"

    # other roles may not use cases at all; only investigators open them
    assert api.as_(REG, "GET", url).status_code == 403
    assert api.as_(REG, "GET", "/api/v1/cases").status_code == 403
    for who in (AN, ADM, AUD):
        r = api.as_(who, "POST", "/api/v1/cases", json={"reference": "R", "title": "T"})
        assert r.status_code == 403, who

    # shared read-only: reads, may not change or share further
    r = api.as_(INV, "POST", f"{url}/shares", json={"username": INV2})
    assert r.status_code == 200 and r.json()[0]["access"] == "read"
    assert api.as_(INV2, "GET", url).json()["access"] == "read"
    assert api.as_(INV2, "PATCH", url, json={"notes": "mine"}).status_code == 403
    r = api.as_(INV2, "POST", f"{url}/shares", json={"username": AN})
    assert r.status_code == 403
    assert [c["id"] for c in api.as_(INV2, "GET", "/api/v1/cases").json()["items"]] == [case["id"]]

    # shared read-write: changes the notes
    api.as_(INV, "POST", f"{url}/shares", json={"username": INV2, "access": "write"})
    r = api.as_(INV2, "PATCH", url, json={"notes": "second lead"})
    assert r.status_code == 200 and r.json()["notes"] == "second lead"
    assert r.json()["owner"] == INV

    # a share taken back hides the case again
    r = api.as_(INV, "DELETE", f"{url}/shares/{INV2}")
    assert r.status_code == 200 and r.json() == []
    assert api.as_(INV2, "GET", url).status_code == 404

    # admins and auditors list every case; the list is paginated
    _open(api, INV2, reference="POL-2")
    for who in (ADM, AUD):
        assert api.as_(who, "GET", "/api/v1/cases").json()["total"] == 2
    page = api.as_(ADM, "GET", "/api/v1/cases", params={"page_size": 1, "page": 2}).json()
    assert page["total"] == 2 and [c["reference"] for c in page["items"]] == ["POL-1"]
    assert api.as_(INV, "GET", "/api/v1/cases").json()["total"] == 1


def test_bad_input_is_a_4xx_with_a_message(cases_api: Api) -> None:
    api = cases_api
    case = _open(api)
    url = f"/api/v1/cases/{case['id']}"

    def refused(r, status: int) -> str:  # type: ignore[no-untyped-def]
        assert r.status_code == status, r.text
        assert r.json()["message"]
        return str(r.json()["message"])

    refused(api.as_(INV, "POST", "/api/v1/cases", json={"reference": "", "title": "T"}), 422)
    refused(api.as_(INV, "POST", "/api/v1/cases", json={"title": "T"}), 422)
    assert "nothing to change" in refused(api.as_(INV, "PATCH", url, json={}), 422)
    assert "registrar" in refused(
        api.as_(INV, "POST", f"{url}/shares", json={"username": REG}), 422
    )
    assert "no active account" in refused(
        api.as_(INV, "POST", f"{url}/shares", json={"username": "nobody"}), 422
    )
    assert "theirs already" in refused(
        api.as_(INV, "POST", f"{url}/shares", json={"username": INV}), 422
    )
    refused(api.as_(INV, "POST", f"{url}/shares", json={"username": AN, "access": "own"}), 422)
    refused(api.as_(INV, "DELETE", f"{url}/shares/{AN}"), 404)
    refused(api.as_(INV, "GET", "/api/v1/cases/0"), 422)
    refused(api.as_(INV, "GET", f"/api/v1/cases/{2**63}"), 422)
    decision = {"search_id": 1, "object_id": "A-0", "decision": "confirmed"}
    refused(api.as_(INV, "POST", f"{url}/decisions", json=decision | {"decision": "maybe"}), 422)


def test_searches_attach_and_decisions_keep_their_history(cases_api: Api) -> None:
    api = cases_api
    _catalogue(api)
    case = _open(api)
    url = f"/api/v1/cases/{case['id']}"

    result = _search(api, case_id=case["id"])
    assert result["_status"] == 200, result
    assert result["case_id"] == case["id"] and result["case_reference"] == "POL-1"
    top = result["hits"][0]
    assert top["object_id"] == "A-1"

    # another investigator may not attach a search to a case not shared with them (no search
    # is run or logged), nor a read-only sharee
    assert _search(api, INV2, case_id=case["id"])["_status"] == 404
    api.as_(INV, "POST", f"{url}/shares", json={"username": INV2})
    assert _search(api, INV2, case_id=case["id"])["_status"] == 403
    assert api.as_(AUD, "GET", "/api/v1/searches").json()["total"] == 1

    detail = api.as_(INV, "GET", url).json()
    [search] = detail["searches"]
    assert search["search_id"] == result["search_id"] and search["username"] == INV
    assert search["query_sha256"] == result["query_sha256"]
    assert [(h["object_id"], h["decision"]) for h in search["hits"]] == [("A-1", "pending_review")]
    # what the search said, as it kept it
    [hit] = search["hits"]
    assert hit["search_decision"] == "match" and hit["inliers"] == top["inliers"]
    thumb = api.as_(INV2, "GET", search["query_url"])  # a sharee sees the query photo
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"

    decide = {"search_id": result["search_id"], "object_id": "A-1", "photo_id": top["photo_id"]}
    r = api.as_(INV, "POST", f"{url}/decisions", json=decide | {"decision": "confirmed"})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == INV and r.json()["decision"] == "confirmed"
    api.as_(INV, "POST", f"{url}/shares", json={"username": INV2, "access": "write"})
    r = api.as_(
        INV2, "POST", f"{url}/decisions", json=decide | {"decision": "rejected", "note": "copy"}
    )
    assert r.status_code == 201, r.text
    # a decided object that was not the top hit is listed too
    r = api.as_(
        INV,
        "POST",
        f"{url}/decisions",
        json=decide | {"object_id": "A-2"} | {"decision": "rejected", "photo_id": None},
    )
    assert r.status_code == 201, r.text

    history = api.as_(AUD, "GET", f"{url}/decisions").json()
    assert [(d["object_id"], d["decision"], d["username"]) for d in history] == [
        ("A-2", "rejected", INV),
        ("A-1", "rejected", INV2),
        ("A-1", "confirmed", INV),
    ]
    assert all(d["created_at"] for d in history)
    hits = api.as_(ADM, "GET", url).json()["searches"][0]["hits"]
    assert [(h["object_id"], h["decision"], h["decided_by"], h["note"]) for h in hits] == [
        ("A-1", "rejected", INV2, "copy"),
        ("A-2", "rejected", INV, None),
    ]
    evidence = hits[0]["evidence_url"]
    png = api.as_(INV2, "GET", evidence)  # not the search's author, but shares the case
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert api.as_(AN, "GET", evidence).status_code == 404

    # decisions only on searches attached to this case, and on catalogue objects
    other = _search(api, INV)
    r = api.as_(
        INV,
        "POST",
        f"{url}/decisions",
        json=decide | {"search_id": other["search_id"], "decision": "confirmed"},
    )
    assert r.status_code == 422 and "not attached" in r.json()["message"]
    r = api.as_(
        INV,
        "POST",
        f"{url}/decisions",
        json=decide | {"object_id": "NOPE", "decision": "confirmed"},
    )
    assert r.status_code == 422 and "no catalogue object" in r.json()["message"]
    assert (
        api.as_(
            AUD, "POST", f"{url}/decisions", json=decide | {"decision": "confirmed"}
        ).status_code
        == 403
    )

    # an earlier search of one's own attaches afterwards; another's search does not
    r = api.as_(INV, "POST", f"{url}/searches", json={"search_id": other["search_id"]})
    assert r.status_code == 200 and len(r.json()["searches"]) == 2
    theirs = _search(api, INV2)
    r = api.as_(INV, "POST", f"{url}/searches", json={"search_id": theirs["search_id"]})
    assert r.status_code == 404
    second = _open(api, reference="POL-9")
    r = api.as_(
        INV,
        "POST",
        f"/api/v1/cases/{second['id']}/searches",
        json={"search_id": other["search_id"]},
    )
    assert r.status_code == 409

    # every change is chained in the audit log, and the chain holds
    actions = [
        e["action"]
        for e in api.as_(AUD, "GET", "/api/v1/audit", params={"page_size": 200}).json()["items"]
    ]
    for action in ("case_open", "case_share", "case_attach_search", "case_decision"):
        assert action in actions
    assert actions.count("case_decision") == 3
    assert api.as_(AUD, "GET", "/api/v1/audit/verify").json()["ok"]


def test_a_case_report_covers_its_searches_for_all_who_read_the_case(cases_api: Api) -> None:
    api = cases_api
    _catalogue(api)
    case = _open(api)
    url = f"/api/v1/cases/{case['id']}/report"
    _error = api.as_(INV, "GET", f"{url}.html")
    assert _error.status_code == 422 and "no search to report on" in _error.json()["message"]
    first = _search(api, case_id=case["id"], seed=1)
    second = _search(api, case_id=case["id"], seed=2)
    # a sharee reports on searches that are not theirs; an outsider is told nothing
    assert api.as_(INV2, "GET", f"{url}.html").status_code == 404
    api.as_(INV, "POST", f"/api/v1/cases/{case['id']}/shares", json={"username": INV2})
    html = api.as_(INV2, "GET", f"{url}.html")
    assert html.status_code == 200, html.text
    assert "POL-1" in html.text
    verdict = api.as_(
        AUD, "POST", "/api/v1/reports/verify", files={"file": ("r.html", html.content)}
    ).json()
    assert verdict["valid"], verdict
    assert verdict["search_ids"] == [first["search_id"], second["search_id"]]
    pdf = api.as_(AUD, "GET", f"{url}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    entries = api.as_(AUD, "GET", "/api/v1/audit").json()["items"]
    assert any(e["action"] == "report" and e["subject"].startswith("case ") for e in entries)


def test_a_case_follows_the_objects_its_searches_matched_and_confirmed(cases_api: Api) -> None:
    from storage.catalogue.alerts import AlertStore

    api = cases_api
    _catalogue(api)
    case = _open(api)
    result = _search(api, case_id=case["id"], seed=1)
    assert [h["object_id"] for h in result["hits"] if h["is_match"]] == ["A-1"]
    url = f"/api/v1/cases/{case['id']}"
    decide = {"search_id": result["search_id"], "object_id": "A-2", "decision": "confirmed"}
    assert api.as_(INV, "POST", f"{url}/decisions", json=decide).status_code == 201
    store = AlertStore(api.client.app.state.runtime.catalogue.engine)  # type: ignore[attr-defined]
    assert store.watched_objects([case["id"]]) == ["A-1", "A-2"]


def _wait_job(api: Api, job_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = api.as_(AN, "GET", f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_batch_checks_attach_to_a_case(cases_api: Api) -> None:
    api = cases_api
    _catalogue(api, 2)
    api.as_(REG, "POST", "/api/v1/objects/A-1/status", json={"status": "stolen"})
    case = _open(api)
    url = f"/api/v1/cases/{case['id']}"
    files = [
        ("manifest", ("l.csv", b"listing_id,image\nL1,one.jpg\n", "text/csv")),
        ("images", ("one.jpg", jpeg_bytes(photographed(textured_object(1), 3)), "image/jpeg")),
    ]
    # the analyst must be given the case, read-write, first
    r = api.as_(AN, "POST", "/api/v1/jobs", files=files, data={"case_id": str(case["id"])})
    assert r.status_code == 404, r.text
    api.as_(INV, "POST", f"{url}/shares", json={"username": AN})
    r = api.as_(AN, "POST", "/api/v1/jobs", files=files, data={"case_id": str(case["id"])})
    assert r.status_code == 403, r.text
    assert api.as_(AN, "GET", "/api/v1/jobs").json() == []
    assert 'id="job-case"' not in api.as_(AN, "GET", "/jobs").text
    api.as_(INV, "POST", f"{url}/shares", json={"username": AN, "access": "write"})
    # the batch-check page offers the case now
    page = api.as_(AN, "GET", "/jobs").text
    assert 'id="job-case"' in page and f'value="{case["id"]}"' in page
    r = api.as_(AN, "POST", "/api/v1/jobs", files=files, data={"case_id": str(case["id"])})
    assert r.status_code == 202, r.text
    job = _wait_job(api, r.json()["id"])
    [attached] = api.as_(INV, "GET", url).json()["jobs"]
    assert attached["id"] == job["id"] and attached["username"] == AN
    assert attached["status"] == "succeeded" and attached["hits"] == 1 and attached["total"] == 1


def _login(api: Api, who: str) -> str:
    r = api.client.post(
        "/login", data={"username": who, "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    page = api.client.get("/cases", headers={"Accept": "text/html"})
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match
    return match.group(1)


def test_case_pages_open_search_and_decide(cases_api: Api) -> None:
    api = cases_api
    _catalogue(api)
    html = {"Accept": "text/html"}
    csrf = _login(api, INV)
    assert 'href="/cases"' in api.client.get("/cases", headers=html).text  # in the menu

    r = api.client.post("/cases", data={"csrf_token": csrf, "reference": "", "title": "x"})
    assert r.status_code == 422 and "reference" in r.text
    r = api.client.post(
        "/cases",
        data={"csrf_token": csrf, "reference": "POL-7", "title": "Icons", "notes": "n1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    case_url = r.headers["location"]
    case_id = int(case_url.rsplit("/", 1)[1])

    page = api.client.get(f"/search?case_id={case_id}", headers=html).text
    assert f'<option value="{case_id}" selected>POL-7' in page
    query = jpeg_bytes(photographed(textured_object(2), seed=5))
    r = api.client.post(
        "/search",
        data={"csrf_token": csrf, "case_id": str(case_id), "scope": "all"},
        files={"file": ("q.jpg", query, "image/jpeg")},
        headers=html,
    )
    assert r.status_code == 200 and "review the hits in the case" in r.text

    page = api.client.get(case_url, headers=html)
    assert page.status_code == 200
    assert "POL-7" in page.text and "n1" in page.text and "pending review" in page.text
    search_id = int(re.search(r'data-search-id="(\d+)"', page.text).group(1))  # type: ignore[union-attr]
    r = api.client.post(
        f"{case_url}/decisions",
        data={
            "csrf_token": csrf,
            "search_id": str(search_id),
            "object_id": "A-2",
            "decision": "confirmed",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith(f"#search-{search_id}")
    r = api.client.post(case_url, data={"csrf_token": csrf, "notes": "n2"}, follow_redirects=False)
    assert r.status_code == 303
    r = api.client.post(
        f"{case_url}/shares",
        data={"csrf_token": csrf, "username": REG, "access": "read"},
        headers=html,
    )
    assert r.status_code == 422 and "registrar" in r.text
    page = api.client.get(case_url, headers=html).text
    assert "confirmed" in page and "n2" in page and f"{INV}," in page

    # without the CSRF token a form is refused
    r = api.client.post(case_url, data={"notes": "evil"}, headers=html)
    assert r.status_code == 403

    # another investigator: the page does not exist for them
    api.client.post("/logout", data={"csrf_token": csrf})
    _login(api, INV2)
    assert api.client.get(case_url, headers=html).status_code == 404
    assert "POL-7" not in api.client.get("/cases", headers=html).text


@pytest.mark.parametrize(
    ("role", "own", "shared", "expected"),
    [
        (Role.INVESTIGATOR, True, None, "write"),
        (Role.INVESTIGATOR, False, None, None),
        (Role.INVESTIGATOR, False, "read", "read"),
        (Role.INVESTIGATOR, False, "write", "write"),
        (Role.ANALYST, False, "write", "write"),
        (Role.ANALYST, False, None, None),
        (Role.ADMIN, False, None, "write"),
        (Role.AUDITOR, False, None, "read"),
        # a share gives an auditor nothing more, a registrar nothing at all
        (Role.AUDITOR, False, "write", "read"),
        (Role.REGISTRAR, False, "write", None),
    ],
)
def test_policy_case_access(
    role: Role, own: bool, shared: str | None, expected: str | None
) -> None:
    from service import policy

    owner = 1 if own else 2
    assert policy.case_access(role, account_id=1, owner_id=owner, shared=shared) == expected
    assert policy.may_share_case(role, account_id=1, owner_id=owner) == (
        role is Role.ADMIN or (own and role is Role.INVESTIGATOR)
    )
