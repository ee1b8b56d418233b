"""Issue 12: the search log filters by dates, user and case (pages keep the filter) and exports
the filtered rows as CSV that a spreadsheet cannot run; auditors only."""

from __future__ import annotations

import csv
import datetime as dt
import io

from tests.service.conftest import PASSWORD, Api

AUD = "auditor"


def _log(api: Api) -> None:
    log = api.client.app.state.runtime.search_log  # type: ignore[attr-defined]
    for i in range(60):
        log.log_search(
            username="inv" if i % 2 else "inv2",
            account_id=None,
            case_reference='=HYPERLINK("x")' if i == 0 else f"POL/2024-{i % 3}",
            query_sha256=f"{i:064x}",
            filters={"statuses": ["stolen"]},
            matches=i % 2,
            top_object_id=None,
            top_similarity=None,
        )


def _total(api: Api, **params: str) -> int:
    r = api.as_(AUD, "GET", "/api/v1/searches", params=params)
    assert r.status_code == 200, r.text
    return r.json()["total"]  # type: ignore[no-any-return]


def test_the_log_filters_by_user_case_and_dates(api: Api) -> None:
    _log(api)
    today = dt.date.today()
    assert _total(api) == 60
    assert _total(api, username="inv") == 30
    assert _total(api, case="pol/2024-1") == 20  # part of the reference, any case
    assert _total(api, username="inv", case="2024-1") == 10
    assert _total(api, since=today.isoformat()) == 60
    assert _total(api, until=(today - dt.timedelta(days=1)).isoformat()) == 0
    assert _total(api, since=(today + dt.timedelta(days=2)).isoformat()) == 0
    r = api.as_(
        AUD, "GET", "/api/v1/searches", params={"since": "2024-05-02", "until": "2024-05-01"}
    )
    assert r.status_code == 422 and "empty" in r.json()["message"]
    assert _total(api, case="%") == 0  # a wildcard is a character, not a pattern


def test_the_csv_export_is_the_filtered_rows_neutralised_and_logged(api: Api) -> None:
    _log(api)
    r = api.as_(AUD, "GET", "/api/v1/searches.csv", params={"username": "inv2"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 30 and {row["username"] for row in rows} == {"inv2"}
    first = [row for row in rows if row["query_sha256"] == f"{0:064x}"][0]
    assert first["case_reference"].startswith("'=")
    assert first["filters"] == "statuses: stolen"
    entries = api.as_(AUD, "GET", "/api/v1/audit", params={"action": "search_log_export"}).json()
    assert entries["total"] == 1
    for who in ("inv", "analyst", "admin", "reg_a"):
        assert api.as_(who, "GET", "/api/v1/searches.csv").status_code == 403


def test_the_page_has_the_filters_keeps_them_across_pages_and_links_the_export(
    api: Api,
) -> None:
    _log(api)
    r = api.client.post("/login", data={"username": AUD, "password": PASSWORD})
    assert r.status_code == 200
    page = api.client.get("/audit", params={"case": "2024", "since": "", "until": ""}).text
    assert "59 searches" in page
    assert 'href="?case=2024&amp;page=2"' in page
    assert 'href="/api/v1/searches.csv?case=2024"' in page
    assert 'name="since"' in page and 'name="until"' in page
    page = api.client.get("/audit", params={"username": "inv", "page": 1}).text
    assert "30 searches" in page
    bad = api.client.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "not a date" in bad.text
