"""Match reports and due-diligence receipts of logged searches (signed HTML and PDF), their
check, and the service's public key.

A report of a search may be made by whoever may read the search (its author, the admin, the
auditor: `service.policy.may_read_search`); anyone else is told the search does not exist.
Every report made is chained in the audit log with its content hash, so a report shown in
court can be matched to the moment it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from engine.reports import (
    SignedReport,
    build_report,
    fingerprint,
    load_signing_key,
    public_key_pem,
    render_html,
    render_pdf,
    verify_document,
)
from engine.services import Services
from kernel.errors import NotFound
from service import policy
from service.deps import Principal
from service.runtime import Runtime

__all__ = [
    "PublicKeyOut",
    "ReportFormat",
    "VerdictOut",
    "public_key",
    "report_of_searches",
    "signed_report",
    "verify_report",
]


class ReportFormat(StrEnum):
    PDF = "pdf"
    HTML = "html"


class VerdictOut(BaseModel):
    valid: bool
    #: Plain words: why the report is valid or not.
    reason: str
    kind: str | None = None
    content_sha256: str | None = None
    key_fingerprint: str | None = None
    search_ids: list[int | None] = []
    query_sha256: list[str | None] = []


class PublicKeyOut(BaseModel):
    algorithm: str = "Ed25519"
    fingerprint: str
    pem: str


def signed_report(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    search_ids: Sequence[int],
    title: str | None = None,
    case_id: int | None = None,
    language: str | None = None,
) -> SignedReport:
    """The signed HTML report of ``search_ids`` (blocking: run it off the event loop).

    Each search is checked against the caller (`service.policy.may_read_search`), except for
    a case's report (``case_id``): there the caller has checked that the caller may read the
    case and that the searches are the case's, which those it is shared with may report on.
    """
    for search_id in search_ids:
        logged = rt.search_log.get_search(search_id)
        if case_id is None and not policy.may_read_search(
            principal.role, account_id=principal.account.id, author_id=logged.account_id
        ):
            # The same answer as for a search that does not exist: ids are sequential.
            raise NotFound(f"no search {search_id}")
    content = build_report(
        services,
        rt.search_log,
        search_ids,
        generated_by=principal.account.username,
        title=title,
        # In the language of whoever generates it: their account's, else their browser's.
        language=principal.account.language or language,
    )
    report = render_html(content, load_signing_key(rt.settings.report_key_file))
    rt.audit.append(
        actor=principal.account.username,
        action="report",
        subject=(f"case {case_id}: " if case_id is not None else "")
        + ", ".join(f"search {i}" for i in search_ids),
        details={
            "kind": report.kind,
            "search_ids": list(search_ids),
            "content_sha256": report.content_sha256,
            "key_fingerprint": report.key_fingerprint,
        },
    )
    return report


async def report_of_searches(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    search_ids: Sequence[int],
    fmt: ReportFormat,
    title: str | None = None,
    case_id: int | None = None,
    language: str | None = None,
) -> bytes:
    """The report of ``search_ids`` as PDF or HTML bytes (``case_id``: see `signed_report`)."""

    def work() -> bytes:
        report = signed_report(
            rt,
            services,
            principal,
            search_ids=search_ids,
            title=title,
            case_id=case_id,
            language=language,
        )
        if fmt is ReportFormat.PDF:
            return render_pdf(report.html)
        return report.html.encode()

    return await run_in_threadpool(work)


async def verify_report(rt: Runtime, data: bytes) -> VerdictOut:
    def work() -> VerdictOut:
        key = load_signing_key(rt.settings.report_key_file)
        verdict = verify_document(data, key.public_key())
        return VerdictOut(
            valid=verdict.valid,
            reason=verdict.reason,
            kind=verdict.kind,
            content_sha256=verdict.content_sha256,
            key_fingerprint=verdict.key_fingerprint,
            search_ids=list(verdict.search_ids),
            query_sha256=list(verdict.query_sha256),
        )

    return await run_in_threadpool(work)


def public_key(rt: Runtime) -> PublicKeyOut:
    public = load_signing_key(rt.settings.report_key_file).public_key()
    return PublicKeyOut(fingerprint=fingerprint(public), pem=public_key_pem(public))
