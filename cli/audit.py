"""`artmatch audit verify` and `artmatch audit log`: the tamper-evident audit chain
(`storage.catalogue.audit`), and the name the command line signs its entries with."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.table import Table

from cli.app import app, err, out, settings_of

__all__ = ["audit_app", "cli_actor"]

audit_app = typer.Typer(
    name="audit",
    help="The audit chain of searches, evidence, accounts and catalogue changes.",
    no_args_is_help=True,
)


def cli_actor() -> str:
    """Who a command-line action is logged as: the operating-system user, marked as such
    (the command line has no artmatch account; its users are whoever may open the database)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli:unknown"


def _audit_log(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from storage.catalogue import create_catalogue
    from storage.catalogue.audit import AuditLog

    return AuditLog(create_catalogue(settings_of(ctx).database_url).engine)


@audit_app.command()
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Walk the chain from its first entry; name the first broken entry (exit 1 if any)."""
    log = _audit_log(ctx)
    try:
        status = log.verify()
    finally:
        log.engine.dispose()
    if as_json:
        print(json.dumps(status.__dict__ | {"summary": status.summary}, indent=2))
    elif status.ok:
        out.print(status.summary, highlight=False)
    else:
        err.print(f"[red]{status.summary}[/]", highlight=False)
        for problem in status.problems[1:20]:
            err.print(f"  also: {problem}", highlight=False)
    if not status.ok:
        raise typer.Exit(1)


@audit_app.command("log")
def show_log(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest entries to show.")] = 50,
    actor: Annotated[str | None, typer.Option(help="Only this actor's entries.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action (e.g. search).")] = None,
) -> None:
    """The newest entries of the chain."""
    log = _audit_log(ctx)
    try:
        entries, total = log.entries(offset=0, limit=limit, actor=actor, action=action)
    finally:
        log.engine.dispose()
    table = Table(title=f"audit chain: {len(entries)} of {total} entries")
    for col in ("#", "when (UTC)", "who", "action", "subject", "details"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            str(e.seq),
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.action,
            e.subject or "",
            json.dumps(e.details, ensure_ascii=False),
        )
    out.print(table)


app.add_typer(audit_app)
