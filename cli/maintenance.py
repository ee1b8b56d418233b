"""Upkeep: rebuild the vector index."""

from __future__ import annotations

import typer

from cli.app import app, open_services, out, progress_bar


@app.command()
def reindex(ctx: typer.Context) -> None:
    """Rebuild the vector index from stored vectors; embed photos that have none for this model."""
    from engine.services import open_index
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
    finally:
        services.close()
    out.print(f"index rebuilt: {services.index.size} photo vectors ({embedded} newly embedded)")
