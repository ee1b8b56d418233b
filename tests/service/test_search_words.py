"""The object list's ``q`` finds a record whatever its script, case and accents."""

from __future__ import annotations

from tests.service.conftest import Api


def test_the_api_search_ignores_script(api: Api) -> None:
    for oid, title in (("A-1", "Свети Никола"), ("A-2", "Sveti Nikóla")):
        r = api.as_("reg_a", "POST", "/api/v1/objects", json={"object_id": oid, "title": title})
        assert r.status_code == 201, r.text
    for q in ("sveti nikola", "Свети Никола", "SVETI NIKOLA"):
        r = api.as_("inv", "GET", "/api/v1/objects", params={"q": q})
        assert r.status_code == 200, r.text
        assert sorted(o["object_id"] for o in r.json()["items"]) == ["A-1", "A-2"], q


def test_the_catalogue_page_search_ignores_script(api: Api) -> None:
    for oid, title in (("B-1", "Ђурђевдан"), ("B-2", "Madonna")):
        r = api.as_("reg_a", "POST", "/api/v1/objects", json={"object_id": oid, "title": title})
        assert r.status_code == 201, r.text
    page = api.as_("inv", "GET", "/objects", params={"q": "Đurđevdan"})
    assert page.status_code == 200, page.text[:300]
    assert "B-1" in page.text and "B-2" not in page.text
