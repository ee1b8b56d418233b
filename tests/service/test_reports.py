"""Match reports and due-diligence receipts through the API: signed PDF and HTML, the check,
the public key, and who may make them."""

from __future__ import annotations

import numpy as np
import pypdfium2
import pytest

from kernel.enums import Role
from service.security import new_token
from tests.service.conftest import Api, password_hash
from tests.utils.images import jpeg_bytes, photographed, textured_object

REG, INV = "reg_a", "inv"


def _catalogue(api: Api, n: int = 3) -> None:
    for i in range(n):
        r = api.as_(
            REG, "POST", "/api/v1/objects", json={"object_id": f"A-{i}", "title": f"Vase {i}"}
        )
        assert r.status_code == 201, r.text
        files = [("files", ("p.jpg", jpeg_bytes(textured_object(i)), "image/jpeg"))]
        assert api.as_(REG, "POST", f"/api/v1/objects/A-{i}/photos", files=files).status_code == 201
    api.as_(
        REG,
        "POST",
        "/api/v1/objects/A-1/status",
        json={"status": "stolen", "date": "2024-03-01", "reference": "POL-77"},
    )


def _search(api: Api, image_seed: int, who: str = INV) -> dict:  # type: ignore[type-arg]
    query = jpeg_bytes(photographed(textured_object(image_seed), seed=5))
    r = api.as_(
        who,
        "POST",
        "/api/v1/searches",
        files={"file": ("q.jpg", query, "image/jpeg")},
        data={"case_reference": "CASE-1"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _verify(api: Api, data: bytes, name: str = "r.pdf") -> dict:  # type: ignore[type-arg]
    r = api.as_(INV, "POST", "/api/v1/reports/verify", files={"file": (name, data)})
    assert r.status_code == 200, r.text
    return r.json()


def test_match_report_pdf_shows_the_match_and_verifies(api: Api) -> None:
    _catalogue(api)
    result = _search(api, 1)
    assert result["hits"][0]["object_id"] == "A-1" and result["hits"][0]["is_match"]
    r = api.as_(INV, "GET", f"/api/v1/searches/{result['search_id']}/report.pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    pdf = pypdfium2.PdfDocument(r.content)
    text = "".join(page.get_textpage().get_text_range() for page in pdf)
    flat = "".join(text.split())
    assert "match report" in text and "A-1" in text and "POL-77" in text and "stolen" in text
    assert result["query_sha256"] in flat
    # the query photo and the evidence picture are drawn on the first page: not blank
    first = np.asarray(pdf[0].render(scale=1).to_pil().convert("L"))
    pdf.close()
    assert first.min() < 100 and len(np.unique(first)) > 50
    verdict = _verify(api, r.content)
    assert verdict["valid"], verdict
    assert verdict["kind"] == "match report" and verdict["search_ids"] == [result["search_id"]]
    # the same content as HTML verifies too, and the key is published
    html = api.as_(INV, "GET", f"/api/v1/searches/{result['search_id']}/report.html")
    assert html.status_code == 200 and "A-1" in html.text
    assert _verify(api, html.content, "r.html")["valid"]
    key = api.client.get("/api/v1/reports/public-key").json()
    assert key["fingerprint"] == verdict["key_fingerprint"] and "PUBLIC KEY" in key["pem"]
    # the report is chained
    log = api.as_("auditor", "GET", "/api/v1/audit", params={"action": "report"}).json()
    assert verdict["content_sha256"] in {e["details"]["content_sha256"] for e in log["items"]}


def test_no_match_gives_a_receipt_of_the_coverage(api: Api) -> None:
    _catalogue(api)
    result = _search(api, 99)
    assert not any(h["is_match"] for h in result["hits"])
    r = api.as_(INV, "GET", f"/api/v1/searches/{result['search_id']}/report.html")
    assert r.status_code == 200
    assert "due-diligence receipt" in r.text and "3 objects, 3 photos" in r.text
    verdict = _verify(api, r.content, "r.html")
    assert verdict["valid"] and verdict["kind"] == "due-diligence receipt"


def test_tampered_html_fails(api: Api) -> None:
    _catalogue(api)
    result = _search(api, 1)
    html = api.as_(INV, "GET", f"/api/v1/searches/{result['search_id']}/report.html").text
    edited = html.replace("POL-77", "POL-78", 1)
    assert edited != html
    verdict = _verify(api, edited.encode(), "r.html")
    assert not verdict["valid"] and "changed" in verdict["reason"]
    assert not _verify(api, b"<html>hello</html>", "x.html")["valid"]
    assert not _verify(api, b"%PDF-1.4 junk", "x.pdf")["valid"]


@pytest.mark.parametrize("who,status", [("admin", 200), ("auditor", 200), ("reg_a", 403)])
def test_who_may_make_a_report(api: Api, who: str, status: int) -> None:
    _catalogue(api, n=1)
    result = _search(api, 0)
    r = api.as_(who, "GET", f"/api/v1/searches/{result['search_id']}/report.html")
    assert r.status_code == status, r.text


def test_another_investigator_is_told_the_search_does_not_exist(api: Api) -> None:
    _catalogue(api, n=1)
    result = _search(api, 0)
    accounts = api.client.app.state.runtime.accounts  # type: ignore[attr-defined]
    other = accounts.create_account(
        username="inv2", password_hash=password_hash(), role=Role.INVESTIGATOR, institution=None
    )
    token, digest = new_token()
    accounts.add_token(account_id=other.id, name="test", token_sha256=digest)
    r = api.client.get(
        f"/api/v1/searches/{result['search_id']}/report.pdf",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 404
    assert api.as_(INV, "GET", "/api/v1/searches/9999/report.pdf").status_code == 404
    assert (
        api.as_(INV, "GET", f"/api/v1/searches/{result['search_id']}/report.doc").status_code == 422
    )
