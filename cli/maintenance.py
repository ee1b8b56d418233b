"""Upkeep: rebuild the vector and descriptor indexes."""

from __future__ import annotations

import typer

from cli.app import app, open_services, out, progress_bar


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
