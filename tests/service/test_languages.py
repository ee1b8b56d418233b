"""The pages speak the reader's language: the account's choice, else the one picked on the
login page, else the browser's; and an investigator reads plain words, not engineering."""

from __future__ import annotations

import re

from kernel.i18n import translator
from models.evidence import CAPTION_WORDS
from service.pages.rendering import EVIDENCE_WORDS
from tests.service.conftest import PASSWORD, Api
from tests.utils.images import jpeg_bytes, photographed, textured_object

HTML = {"Accept": "text/html"}


def _html_lang(text: str) -> str:
    match = re.search(r'<html lang="([^"]+)">', text)
    assert match, text[:200]
    return match.group(1)


def test_the_browsers_language_is_used_when_the_account_has_none(api: Api) -> None:
    page = api.as_("inv", "GET", "/search", headers=HTML | {"Accept-Language": "de-AT,de;q=0.9"})
    assert page.status_code == 200
    assert _html_lang(page.text) == "de"
    assert "Mit einem Foto suchen" in page.text and "Abmelden" in page.text
    assert "Search with a photo" not in page.text
    page = api.as_("inv", "GET", "/search", headers=HTML | {"Accept-Language": "ja, en;q=0.1"})
    assert _html_lang(page.text) == "en" and "Search with a photo" in page.text


def test_the_accounts_language_wins_over_the_browser(api: Api) -> None:
    admin_page = api.as_("admin", "GET", "/admin", headers=HTML)
    account_id = re.search(r'<tr id="account-(\d+)"><td>inv</td>', admin_page.text)
    assert account_id
    r = api.as_(
        "admin",
        "POST",
        f"/admin/accounts/{account_id.group(1)}",
        data={"change": "language", "language": "sr"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = api.as_("inv", "GET", "/search", headers=HTML | {"Accept-Language": "de"})
    assert _html_lang(page.text) == "sr"
    # Serbian in Cyrillic: the texts are the English ones until its translators fill the
    # catalog, but the choice (and with it the <html lang>) is Serbian.
    assert "Abmelden" not in page.text
    r = api.as_(
        "admin",
        "POST",
        f"/admin/accounts/{account_id.group(1)}",
        data={"change": "language", "language": "xx"},
    )
    assert r.status_code == 422 and "unknown language" in r.text


def test_the_account_page_sets_the_own_language(api: Api) -> None:
    r = api.client.post(
        "/login", data={"username": "inv", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303
    page = api.client.get("/account", headers=HTML)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert page.status_code == 200 and csrf and 'id="language-select"' in page.text
    r = api.client.post(
        "/account/language",
        data={"csrf_token": csrf.group(1), "language": "fr"},
        headers=HTML | {"Accept-Language": "de"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = api.client.get("/search", headers=HTML | {"Accept-Language": "de"})
    assert _html_lang(page.text) == "fr" and "Rechercher avec une photo" in page.text
    assert api.as_("inv", "GET", "/api/v1/me").json()["language"] == "fr"
    r = api.client.post(
        "/account/language", data={"csrf_token": csrf.group(1), "language": "klingon"}
    )
    assert r.status_code == 422 and "unknown language" in r.text
    # Back to following the browser.
    api.client.post("/account/language", data={"csrf_token": csrf.group(1), "language": ""})
    page = api.client.get("/search", headers=HTML | {"Accept-Language": "de"})
    assert _html_lang(page.text) == "de"


def test_a_visitor_picks_a_language_on_the_login_page(api: Api) -> None:
    page = api.client.get("/login", headers=HTML | {"Accept-Language": "de"})
    assert _html_lang(page.text) == "de" and "Anmelden" in page.text
    assert 'href="?lang=sr_Latn"' in page.text and "srpski" in page.text
    page = api.client.get("/login?lang=fr", headers=HTML | {"Accept-Language": "de"})
    assert _html_lang(page.text) == "fr" and "Se connecter" in page.text
    assert page.cookies.get("artmatch_lang") == "fr"
    # The cookie keeps the choice on the next page; a wrong login says so in French.
    r = api.client.post(
        "/login",
        data={"username": "inv", "password": "wrong password!"},
        headers=HTML | {"Accept-Language": "de"},
    )
    assert r.status_code == 401 and "mot de passe erroné" in r.text
    page = api.client.get("/login?lang=../../x", headers=HTML | {"Accept-Language": "de"})
    assert page.status_code == 200 and _html_lang(page.text) == "fr"


def test_page_scripts_get_their_texts_translated(api: Api) -> None:
    page = api.as_("analyst", "GET", "/jobs", headers=HTML | {"Accept-Language": "de"})
    block = re.search(r'<script type="application/json" id="i18n">(.*?)</script>', page.text)
    assert block and '"delete_photo": "Dieses Foto löschen?"' in block.group(1)


def _catalogue(api: Api, n: int = 3) -> None:
    for i in range(n):
        r = api.as_(
            "reg_a",
            "POST",
            "/api/v1/objects",
            json={"object_id": f"A-{i}", "materials_techniques": "tempera on wood"},
        )
        assert r.status_code == 201, r.text
        files = {"files": (f"{i}.jpg", jpeg_bytes(textured_object(i)), "image/jpeg")}
        r = api.as_("reg_a", "POST", f"/api/v1/objects/A-{i}/photos", files=files)
        assert r.status_code == 201, r.text


_TECHNICAL = re.compile(r'<details class="technical[^"]*">.*?</details>', re.S)
_ENGINEERING = ("similarity", "margin", "inliers", "homography", "pillow")


def test_search_results_speak_plain_words(api: Api) -> None:
    _catalogue(api)
    query = jpeg_bytes(photographed(textured_object(2), seed=5))
    for language, words in (
        ("en", ("Match", "matching points", "confidence")),
        ("de", ("Treffer", "übereinstimmende Punkte", "Sicherheit")),
    ):
        r = api.as_(
            "inv",
            "POST",
            "/search",
            data={"scope": "all"},
            files={"file": ("q.jpg", query, "image/jpeg")},
            headers=HTML | {"Accept-Language": language},
        )
        assert r.status_code == 200, r.text[:500]
        assert 'class="pair is-match"' in r.text
        technical = _TECHNICAL.findall(r.text)
        assert technical and "inliers" in technical[0] and "similarity" in technical[0]
        plain = _TECHNICAL.sub("", r.text).lower()
        for word in _ENGINEERING:
            assert word not in plain, (language, word)
        for word in words:
            assert word in r.text, (language, word)
        # The confidence in one form: a whole percentage.
        confidence = re.search(r'class="score confidence"[^>]*>([^<]+)<', r.text)
        assert confidence and re.search(r"(>?\d{1,2}\s?%|>99\s?%)", confidence.group(1))
    page = api.as_("inv", "GET", "/objects/A-1", headers=HTML | {"Accept-Language": "fr"})
    assert "Matériaux et techniques" in page.text and "tempera on wood" in page.text
    page = api.as_("inv", "GET", "/objects/A-1", headers=HTML)
    assert "Materials and techniques" in page.text


def test_reports_are_in_the_language_of_who_generates_them(api: Api) -> None:
    _catalogue(api)
    query = jpeg_bytes(photographed(textured_object(2), seed=5))
    r = api.as_("inv", "POST", "/api/v1/searches", files={"file": ("q.jpg", query, "image/jpeg")})
    assert r.status_code == 200, r.text
    search_id = r.json()["search_id"]
    r = api.as_(
        "inv",
        "GET",
        f"/api/v1/searches/{search_id}/report.html",
        headers={"Accept-Language": "de"},
    )
    assert r.status_code == 200
    assert '<html lang="de">' in r.text and "Signatur" in r.text
    assert '"language": "de"' in r.text  # recorded in the signed facts
    r = api.as_("inv", "GET", f"/api/v1/searches/{search_id}/report.html")
    assert '<html lang="en">' in r.text and '"language": "en"' in r.text


def test_the_api_sets_an_accounts_language(api: Api) -> None:
    accounts = api.as_("admin", "GET", "/api/v1/accounts").json()
    inv = next(a for a in accounts if a["username"] == "inv")
    r = api.as_("admin", "PATCH", f"/api/v1/accounts/{inv['id']}", json={"language": "sr_Latn"})
    assert r.status_code == 200 and r.json()["language"] == "sr_Latn", r.text
    r = api.as_("admin", "PATCH", f"/api/v1/accounts/{inv['id']}", json={"language": "zz"})
    assert r.status_code in (400, 422) and "unknown language" in r.json()["message"]
    r = api.as_("admin", "PATCH", f"/api/v1/accounts/{inv['id']}", json={"language": ""})
    assert r.status_code == 200 and r.json()["language"] is None


def test_common_error_messages_are_translated_on_pages(api: Api) -> None:
    r = api.as_(
        "inv",
        "POST",
        "/alerts/webhook",
        data={"url": "ftp://example.org/x"},
        headers=HTML | {"Accept-Language": "de"},
    )
    assert r.status_code == 422, r.text[:300]
    assert "Ein Webhook ist eine http://- oder https://-Adresse" in r.text
    # The API keeps its English message.
    r = api.as_(
        "inv",
        "PUT",
        "/api/v1/alerts/webhook",
        json={"url": "ftp://example.org/x"},
        headers={"Accept-Language": "de"},
    )
    assert r.status_code == 422 and r.json()["message"].startswith("a webhook is an http://")


def test_the_evidence_picture_speaks_the_readers_language(api: Api) -> None:
    assert EVIDENCE_WORDS == CAPTION_WORDS
    german = translator("de")
    assert all(german.gettext(w) != w for w in ("matching points", "matched region"))
    _catalogue(api)
    query = jpeg_bytes(photographed(textured_object(2), seed=5))
    r = api.as_(
        "inv",
        "POST",
        "/api/v1/searches",
        files={"file": ("q.jpg", query, "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    url = f"/api/v1/searches/{body['search_id']}/evidence/{body['hits'][0]['photo_id']}.png"
    pictures = {
        lang: api.as_("inv", "GET", url, headers={"Accept-Language": lang}) for lang in ("en", "de")
    }
    assert all(p.status_code == 200 for p in pictures.values())
    assert pictures["en"].content != pictures["de"].content
