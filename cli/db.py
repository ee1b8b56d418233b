"""`artmatch db upgrade`, `db current` and `db move-features`: the catalogue database's
schema, and moving what older schemas kept in it (local features) to the blob store."""

from __future__ import annotations

import typer

from cli.app import app, out, progress_bar, settings_of

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


@db_app.command("move-features")
def move_features(ctx: typer.Context) -> None:
    """Move local features still held in database rows (catalogues from before migration
    0011) to the blob store; safe to run again, and while the service runs."""
    from storage.blobs import create_blob_store
    from storage.catalogue import create_catalogue
    from storage.features import FeatureStore

    settings = settings_of(ctx)
    catalogue = create_catalogue(
        settings.database_url, features=FeatureStore(create_blob_store(settings))
    )
    try:
        todo = catalogue.features_in_rows()
        with progress_bar() as progress:
            task = progress.add_task("Moving features", total=todo)
            moved = catalogue.move_features_to_blobs(progress=lambda n: progress.advance(task, n))
    finally:
        catalogue.close()
    out.print(f"moved the local features of {moved} photo(s) to the blob store")


app.add_typer(db_app)
