"""Upkeep: rebuild the vector and descriptor indexes; prune old query photos."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import app, open_services, out, progress_bar, settings_of


@app.command()
def reindex(ctx: typer.Context) -> None:
    """Rebuild the vector and descriptor indexes from stored vectors and local features;
    embed photos that have none for this model."""
    from engine.services import open_descriptor_index, open_index
    from ingest.reembed import reembed_missing

    services = open_services(ctx)
    try:
        with progress_bar() as progress:
            task = progress.add_task("Embedding photos without a vector", total=None)
            embedded = reembed_missing(
                services, on_progress=lambda n, t: progress.update(task, completed=n, total=t)
            )
        services.index, _ = open_index(
            services.settings,
            services.catalogue,
            services.embedder,
            force_rebuild=True,
            blobs=services.blobs,
        )
        services.snapshot_version = services.index.meta.version  # open_index snapshotted it
        with progress_bar() as progress:
            progress.add_task("Rebuilding the descriptor index", total=None)
            services.descriptors, _ = open_descriptor_index(
                services.settings, services.catalogue, force_rebuild=True
            )
        services.descriptors_saved_version = services.descriptors.meta.version  # it saved
    finally:
        services.close()
    out.print(f"index rebuilt: {services.index.size} photo vectors ({embedded} newly embedded)")
    out.print(f"descriptor index rebuilt: {services.descriptors.size} descriptors")


@app.command("prune-queries")
def prune_queries(
    ctx: typer.Context,
    days: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Delete query photos not searched with for this many days; default "
            "ARTMATCH_QUERY_RETENTION_DAYS (0 keeps them all).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
) -> None:
    """Delete the photos investigators searched with once no search has used them for the
    retention period; the search log keeps its entries."""
    from engine.retention import prune_query_photos
    from storage.blobs import create_blob_store
    from storage.catalogue import create_catalogue
    from storage.catalogue.query_photos import QueryPhotoAges

    settings = settings_of(ctx)
    days = settings.query_retention_days if days is None else days
    if days == 0:
        out.print("query retention is 0 days: every query photo is kept")
        return
    ages = QueryPhotoAges(create_catalogue(settings.database_url).engine)
    result = prune_query_photos(
        blobs=create_blob_store(settings), ages=ages, days=days, dry_run=dry_run
    )
    verb = "would delete" if dry_run else "deleted"
    out.print(
        f"{verb} {result.expired} query photo(s) not searched with for {days} days; "
        f"kept {result.kept}, and {result.unlogged} no search names"
    )
