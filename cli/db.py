"""`artmatch db upgrade` and `artmatch db current`: the catalogue database's schema."""

from __future__ import annotations

import typer

from cli.app import app, out, settings_of

__all__ = ["db_app"]

db_app = typer.Typer(
    name="db",
    help="The catalogue database's schema: show its revision, migrate it to this version.",
    no_args_is_help=True,
)


def _engine(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from storage.catalogue import create_catalogue

    settings = settings_of(ctx)
    return create_catalogue(settings.database_url, check_schema=False).engine


@db_app.command()
def upgrade(ctx: typer.Context) -> None:
    """Migrate the catalogue database to the newest schema (safe to run again)."""
    from storage.migrate import upgrade as run_upgrade

    engine = _engine(ctx)
    try:
        before, after = run_upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        out.print(f"catalogue database already at revision {after} (head)")
    else:
        out.print(f"catalogue database upgraded from {before or 'empty'} to {after}")


@db_app.command()
def current(ctx: typer.Context) -> None:
    """Print the database's revision; exit 1 if it needs `artmatch db upgrade`."""
    from storage.migrate import UPGRADE_COMMAND, current_revision, head_revision

    engine = _engine(ctx)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if revision == head:
        out.print(f"{revision} (head)")
        return
    out.print(f"{revision or 'empty'}; head is {head}: run `{UPGRADE_COMMAND}`")
    raise typer.Exit(1)


app.add_typer(db_app)
