"""A report as a signed document: HTML (`templates/report.html`) and the same HTML as PDF
(WeasyPrint), and checking one.

The signed payload is the canonical JSON of ``{"facts", "body_sha256"}``: the report's facts
and the SHA-256 of the visible report (the HTML between the body markers, pictures included
as data URLs). It is embedded in the HTML as a JSON script block with its SHA-256
(``content_sha256``), the Ed25519 signature and the signing key's fingerprint; the PDF
carries that HTML as an attachment. Checking a PDF checks the attached HTML, then that every
word on the PDF's pages is in it, so a PDF re-rendered from edited text is caught too.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from markupsafe import Markup

from engine.reports.content import ReportContent
from engine.reports.signing import fingerprint, public_key_pem, sign, signature_valid
from kernel.i18n import FIELD_LABELS, install_jinja, translator
from storage.catalogue.audit import canonical_json

__all__ = [
    "ATTACHMENT_NAME",
    "SignedReport",
    "Verdict",
    "load_weasyprint",
    "render_html",
    "render_pdf",
    "verify_document",
]

#: The name of the signed HTML inside a PDF report.
ATTACHMENT_NAME = "artmatch-report.html"
_BODY_START = "<!--artmatch:body-->"
_BODY_END = "<!--/artmatch:body-->"
_SIGNED = re.compile(
    r'<script type="application/json" id="artmatch-signed">(.*?)</script>', re.DOTALL
)


@dataclass(frozen=True)
class SignedReport:
    html: str
    kind: str
    content_sha256: str
    key_fingerprint: str


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str
    kind: str | None = None
    content_sha256: str | None = None
    key_fingerprint: str | None = None
    search_ids: tuple[int, ...] = ()
    query_sha256: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    # The template lives beside this module, not in service/templates: the command line
    # renders reports too, and it must not need the web service's package.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    install_jinja(env)
    return env


def _language(facts: dict[str, Any]) -> dict[str, Any]:
    """What the template needs to speak the report's language (recorded in its facts, so
    the signed report says which language it was written in)."""
    t = translator(facts.get("language"))
    return {"_translations": t, "html_lang": t.html_lang, "field_labels": FIELD_LABELS}


def render_html(content: ReportContent, key: Ed25519PrivateKey) -> SignedReport:
    """The signed HTML report."""
    page = _templates().get_template("report.html")
    words = _language(content.facts)
    body = page.render(part="body", facts=content.facts, pictures=content.pictures, **words)
    body_sha256 = hashlib.sha256(body.encode()).hexdigest()
    payload = canonical_json({"facts": content.facts, "body_sha256": body_sha256})
    content_sha256 = hashlib.sha256(payload.encode()).hexdigest()
    public = key.public_key()
    envelope = {
        "format": "artmatch-report/1",
        "facts": content.facts,
        "body_sha256": body_sha256,
        "content_sha256": content_sha256,
        "algorithm": "Ed25519",
        "key_fingerprint": fingerprint(public),
        "public_key": public_key_pem(public),
        "signature": sign(key, payload.encode()),
    }
    # "<" escaped: text from users (notes, case references) must not close the script block.
    embedded = json.dumps(envelope, sort_keys=True).replace("<", "\\u003c")
    signed = page.render(
        part="page",
        facts=content.facts,
        body=Markup(_BODY_START + body + _BODY_END),
        envelope=envelope,
        embedded=Markup(embedded),
        **words,
    )
    return SignedReport(
        html=signed,
        kind=content.kind,
        content_sha256=content_sha256,
        key_fingerprint=fingerprint(public),
    )


def load_weasyprint():  # type: ignore[no-untyped-def]
    """WeasyPrint, imported on first use (it loads pango), without its side effect: on
    import it sets Pillow's global ``LOAD_TRUNCATED_IMAGES``, which would make every later
    decode in this process accept truncated photos (`models.images` refuses them)."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import weasyprint
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
    return weasyprint


def render_pdf(signed_html: str) -> bytes:
    """The same report as PDF, with the signed HTML attached for checking."""
    weasyprint = load_weasyprint()
    return weasyprint.HTML(string=signed_html).write_pdf(
        attachments=[
            weasyprint.Attachment(
                string=signed_html,
                name=ATTACHMENT_NAME,
                description="The signed report (artmatch report verify)",
            )
        ]
    )


def verify_document(data: bytes, public: Ed25519PublicKey) -> Verdict:
    """Check a report (PDF or HTML) against the service's public key."""
    if data.startswith(b"%PDF"):
        return _verify_pdf(data, public)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Verdict(False, "not a report: neither a PDF nor UTF-8 HTML")
    return _verify_html(text, public)


def _verify_html(text: str, public: Ed25519PublicKey) -> Verdict:
    found = _SIGNED.search(text)
    if found is None:
        return Verdict(False, "not an artmatch report: no signed content found")
    try:
        envelope: dict[str, Any] = json.loads(found.group(1))
        facts = envelope["facts"]
        claimed = str(envelope["content_sha256"])
        body_claimed = str(envelope["body_sha256"])
        signature = str(envelope["signature"])
        signer = str(envelope.get("key_fingerprint", ""))
    except (ValueError, KeyError, TypeError):
        return Verdict(False, "the signed content is damaged (not the JSON a report carries)")
    searches = facts.get("searches", []) if isinstance(facts, dict) else []
    known = Verdict(
        False,
        "",
        kind=facts.get("kind") if isinstance(facts, dict) else None,
        content_sha256=claimed,
        key_fingerprint=signer,
        search_ids=tuple(s.get("search_id") for s in searches),
        query_sha256=tuple(s.get("query_sha256") for s in searches),
    )
    payload = canonical_json({"facts": facts, "body_sha256": body_claimed}).encode()
    if hashlib.sha256(payload).hexdigest() != claimed:
        return replace(known, reason="the report's facts were changed after signing")
    ours = fingerprint(public)
    if not signature_valid(public, payload, signature):
        if signer and signer != ours:
            return replace(
                known, reason=f"signed with a different key ({signer}), not this service's ({ours})"
            )
        return replace(known, reason="the signature does not match the report's content")
    start, end = text.find(_BODY_START), text.find(_BODY_END)
    if start < 0 or end < start:
        return replace(known, reason="the visible report is missing")
    body = text[start + len(_BODY_START) : end]
    if hashlib.sha256(body.encode()).hexdigest() != body_claimed:
        return replace(known, reason="the visible report was changed after signing")
    return replace(
        known, valid=True, reason=f"valid: signed by this service's key ({ours}), content intact"
    )


def _verify_pdf(data: bytes, public: Ed25519PublicKey) -> Verdict:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return Verdict(False, "not a readable PDF")
    try:
        attached = None
        for i in range(pdf.count_attachments()):
            attachment = pdf.get_attachment(i)
            if attachment.get_name() == ATTACHMENT_NAME:
                attached = bytes(attachment.get_data())
        if attached is None:
            return Verdict(False, "not an artmatch report: the PDF carries no signed content")
        text = attached.decode("utf-8", errors="replace")
        verdict = _verify_html(text, public)
        if not verdict.valid:
            return verdict
        # Whitespace aside, the pages' text is the signed HTML's visible text, in order
        # (WeasyPrint lays out the document in order); line breaks split long hashes.
        shown = "".join(_visible_text(text).split())
        pages = "".join("".join(p.get_textpage().get_text_range().split()) for p in pdf)
        if pages != shown:
            at = next(
                (i for i, (a, b) in enumerate(zip(pages, shown, strict=False)) if a != b),
                min(len(pages), len(shown)),
            )
            return replace(
                verdict,
                valid=False,
                reason="the PDF's pages differ from its signed content "
                f"near {pages[at : at + 30]!r}",
            )
        return verdict
    finally:
        pdf.close()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _visible_text(text: str) -> str:
    parser = _Text()
    parser.feed(text)
    return html.unescape(" ".join(parser.parts))
