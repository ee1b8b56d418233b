"""`artmatch report make` and `artmatch report verify`: signed match reports and
due-diligence receipts of logged searches (`engine.reports`), made and checked offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, err, open_services, out, output_file, settings_of
from cli.audit import cli_actor
from kernel.errors import InvalidInput

__all__ = ["report_app"]

report_app = typer.Typer(
    name="report",
    help="Signed match reports and due-diligence receipts of logged searches.",
    no_args_is_help=True,
)


@report_app.command()
def make(
    ctx: typer.Context,
    search_ids: Annotated[
        list[int], typer.Argument(help="Logged search ids (several: one report of them all).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write; default artmatch-search-ID.pdf."),
    ] = None,
    html: Annotated[bool, typer.Option("--html", help="Write HTML instead of PDF.")] = False,
    title: Annotated[str | None, typer.Option(help="A title printed on the report.")] = None,
) -> None:
    """Make the signed report of searches (a due-diligence receipt when nothing matched).
    The command line may report any search: its users are whoever may open the database."""
    from engine.reports import load_signing_key, render_html, render_pdf
    from engine.reports.content import build_report
    from storage.catalogue.audit import AuditLog
    from storage.catalogue.search_log import SearchLog

    if any(i < 1 for i in search_ids):
        raise InvalidInput("search ids are positive integers")
    if title is not None and len(title) > 500:
        raise InvalidInput("--title: at most 500 characters")
    path = output_file(
        output or Path(f"artmatch-search-{search_ids[0]}.{'html' if html else 'pdf'}"),
        option="--out",
    )
    settings = settings_of(ctx)
    key = load_signing_key(settings.report_key_file)
    services = open_services(ctx)
    try:
        log = SearchLog(services.catalogue.engine)
        content = build_report(services, log, search_ids, generated_by=cli_actor(), title=title)
        report = render_html(content, key)
        AuditLog(services.catalogue.engine).append(
            actor=cli_actor(),
            action="report",
            subject=", ".join(f"search {i}" for i in search_ids),
            details={
                "kind": report.kind,
                "search_ids": list(search_ids),
                "content_sha256": report.content_sha256,
                "key_fingerprint": report.key_fingerprint,
            },
        )
    finally:
        services.catalogue.close()
    data = report.html.encode() if html else render_pdf(report.html)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot write ({exc.strerror or exc})") from None
    out.print(f"{report.kind}: {path} (content SHA-256 {report.content_sha256})")


@report_app.command()
def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The report, PDF or HTML.")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="The signer's public key (PEM, as GET /api/v1/reports/public-key gives it); "
            "default: this installation's key."
        ),
    ] = None,
) -> None:
    """Check a report's signature and content; exit 0 when valid, 1 when not."""
    from engine.reports import load_signing_key, verify_document
    from engine.reports.signing import public_key_from_text

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{file}: cannot read file ({exc.strerror or exc})") from None
    if public_key is not None:
        try:
            public = public_key_from_text(public_key.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{public_key}: not an Ed25519 public key ({exc})") from None
    else:
        public = load_signing_key(settings_of(ctx).report_key_file).public_key()
    verdict = verify_document(data, public)
    if verdict.valid:
        out.print(f"VALID {verdict.kind}: {verdict.reason}", highlight=False)
        return
    err.print(f"INVALID: {verdict.reason}", highlight=False)
    raise typer.Exit(1)


app.add_typer(report_app)
