"""Match reports and due-diligence receipts: the content of a report for one or more logged
searches (`content`), the signed HTML and PDF and their check (`document`), the signing key
(`signing`) and the record a search keeps for them (`record`)."""

from __future__ import annotations

from engine.reports.content import MATCH_REPORT, RECEIPT, ReportContent, build_report
from engine.reports.document import SignedReport, Verdict, render_html, render_pdf, verify_document
from engine.reports.record import search_record
from engine.reports.signing import fingerprint, load_signing_key, public_key_pem

__all__ = [
    "MATCH_REPORT",
    "RECEIPT",
    "ReportContent",
    "SignedReport",
    "Verdict",
    "build_report",
    "fingerprint",
    "load_signing_key",
    "public_key_pem",
    "render_html",
    "render_pdf",
    "search_record",
    "verify_document",
]
