"""Signed match reports and due-diligence receipts: the record a search keeps, the signed
document, and every way a tampered one fails its check."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.evidence import query_blob_key
from engine.reports import (
    RECEIPT,
    build_report,
    load_signing_key,
    render_html,
    render_pdf,
    search_record,
    verify_document,
)
from engine.reports.document import load_weasyprint
from engine.search import search
from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from models.images import decode_image
from storage.catalogue.audit import AuditLog
from storage.catalogue.search_log import SearchLog
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object


@pytest.fixture
def catalogue(services: Services, tmp_path: Path) -> Services:
    ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(tmp_path / "c", 3))))
    return services


def _logged_search(services: Services, seed: int) -> tuple[SearchLog, int]:
    data = jpeg_bytes(photographed(textured_object(seed), seed=5))
    query = decode_image(data)
    result = search(services, query, top_k=5)
    services.blobs.put(query_blob_key(query.sha256), data, content_type="image/jpeg")
    log = SearchLog(services.catalogue.engine)
    search_id = log.log_search(
        username="inv",
        account_id=None,
        case_reference="CASE-1",
        query_sha256=query.sha256,
        filters={},
        matches=len(result.matches),
        top_object_id=result.hits[0].object_id if result.hits else None,
        top_similarity=result.hits[0].similarity if result.hits else None,
        record=search_record(services, result),
    )
    return log, search_id


def _html(services: Services, seed: int, key: Ed25519PrivateKey) -> str:
    log, search_id = _logged_search(services, seed)
    return render_html(build_report(services, log, [search_id], generated_by="inv"), key).html


def test_the_search_record_is_kept_and_chained(catalogue: Services) -> None:
    log, search_id = _logged_search(catalogue, 1)
    record = log.search_record(search_id)
    assert record is not None
    assert record.hits[0].object_id == "obj-1" and record.hits[0].decision == "match"
    assert record.hits[0].inliers and record.hits[0].region is not None
    c = record.coverage
    assert (c.objects_searched, c.photos_searched) == (3, 3)
    assert c.model and "calibration" in c.matcher and c.service_version
    entry = AuditLog(catalogue.catalogue.engine).entries(offset=0, limit=1, action="search")[0][0]
    assert entry.details["record_sha256"] == record.digest()
    assert AuditLog(catalogue.catalogue.engine).verify().ok


def test_report_verifies_and_tampering_fails(catalogue: Services, tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "key.pem")
    html = _html(catalogue, 1, key)
    public = key.public_key()
    good = verify_document(html.encode(), public)
    assert good.valid, good.reason
    assert good.kind == "match report"

    # the visible report edited
    edited = html.replace("obj-1 (default)", "obj-2 (default)", 1)
    assert edited != html
    bad = verify_document(edited.encode(), public)
    assert not bad.valid and "visible report was changed" in bad.reason

    # the signed facts edited (with the visible text left alone)
    block = re.search(r'id="artmatch-signed">(.*?)</script>', html, re.DOTALL)
    assert block is not None
    envelope = json.loads(block.group(1))
    envelope["facts"]["searches"][0]["searched_by"] = "someone else"
    forged = html.replace(block.group(1), json.dumps(envelope))
    bad = verify_document(forged.encode(), public)
    assert not bad.valid and "facts were changed" in bad.reason

    # the signature replaced
    envelope = json.loads(block.group(1))
    envelope["signature"] = envelope["signature"][::-1]
    bad = verify_document(html.replace(block.group(1), json.dumps(envelope)).encode(), public)
    assert not bad.valid and "signature does not match" in bad.reason

    # signed with another key: fails against this service's key
    other = Ed25519PrivateKey.generate()
    bad = verify_document(_html(catalogue, 1, other).encode(), public)
    assert not bad.valid and "different key" in bad.reason


def test_pdf_carries_the_signed_report(catalogue: Services, tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "key.pem")
    html = _html(catalogue, 1, key)
    pdf = render_pdf(html)
    assert verify_document(pdf, key.public_key()).valid

    doc = pypdfium2.PdfDocument(pdf)
    text = " ".join(page.get_textpage().get_text_range() for page in doc)
    pixels = np.asarray(doc[0].render(scale=1).to_pil().convert("RGB"))
    doc.close()
    assert "obj-1" in text and "match report" in text
    # the query photo (a colourful texture) is on the first page
    assert pixels.std(axis=2).max() > 40

    # a PDF re-made from edited text, the original signed HTML attached, is caught
    weasyprint = load_weasyprint()
    edited = html.replace("Object 1", "Object 9")
    forged = weasyprint.HTML(string=edited).write_pdf(
        attachments=[weasyprint.Attachment(string=html, name="artmatch-report.html")]
    )
    bad = verify_document(forged, key.public_key())
    assert not bad.valid and "pages differ" in bad.reason
    assert not verify_document(weasyprint.HTML(string=html).write_pdf(), key.public_key()).valid


def test_no_match_is_a_receipt_of_the_coverage(catalogue: Services, tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "key.pem")
    log, search_id = _logged_search(catalogue, 77)
    content = build_report(catalogue, log, [search_id], generated_by="dealer")
    assert content.kind == RECEIPT
    [facts] = content.facts["searches"]
    assert facts["outcome"] == "no match" and facts["coverage"]["objects_searched"] == 3
    report = render_html(content, key)
    assert "3 objects, 3 photos" in report.html
    assert verify_document(report.html.encode(), key.public_key()).valid


def test_several_searches_in_one_report(catalogue: Services, tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "key.pem")
    log, first = _logged_search(catalogue, 1)
    _, second = _logged_search(catalogue, 77)
    content = build_report(catalogue, log, [first, second], generated_by="inv", title="Case X")
    assert content.kind == "match report"
    verdict = verify_document(render_html(content, key).html.encode(), key.public_key())
    assert verdict.valid and verdict.search_ids == (first, second)


def test_the_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "report.pem"
    key = load_signing_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_signing_key(path)
    assert again.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    path.write_text("not a key")
    with pytest.raises(Exception, match="cannot read the report-signing key"):
        load_signing_key(path)


def test_pdf_rendering_leaves_truncated_photos_refused(catalogue: Services, tmp_path: Path) -> None:
    from PIL import ImageFile

    render_pdf(_html(catalogue, 1, load_signing_key(tmp_path / "key.pem")))
    # WeasyPrint sets this on import; decoding must keep refusing truncated photos
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
