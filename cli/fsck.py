"""`artmatch fsck [--repair]`: do photos, catalogue rows and the index agree?"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from cli.app import app, err, out, settings_of

__all__ = ["fsck"]


@app.command()
def fsck(
    ctx: typer.Context,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Delete orphan blobs, make lost thumbnails again, embed photos without a "
            "vector, rebuild a stale index.",
        ),
    ] = False,
    grace_minutes: Annotated[
        float,
        typer.Option(
            "--grace-minutes",
            min=0,
            help="Orphan blobs younger than this may belong to an import in flight: reported, "
            "never deleted (unless --force).",
        ),
    ] = 60,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --repair, delete recent orphan blobs too."),
    ] = False,
) -> None:
    """Check that photos, catalogue rows and the index agree; exit 1 if they do not."""
    from engine.services import Services
    from ingest.fsck import check_store, repair_store, saved_index
    from models.embedders import create_embedder
    from models.local_features import FEATURES_KEY
    from storage.blobs import create_blob_store
    from storage.catalogue import create_catalogue
    from storage.descriptors.base import DescriptorMeta
    from storage.descriptors.registry import create_descriptor_index
    from storage.features import FeatureStore
    from storage.index.base import IndexMeta
    from storage.index.registry import create_index

    settings = settings_of(ctx)
    grace = dt.timedelta(minutes=grace_minutes)
    blobs = create_blob_store(settings)
    catalogue = create_catalogue(settings.database_url, features=FeatureStore(blobs))
    try:
        with err.status("Loading model..."):
            embedder = create_embedder(settings.embedder)

        def check():  # type: ignore[no-untyped-def]
            with err.status("Checking blobs, rows and index..."):
                index, source = saved_index(settings, blobs, embedder)
                report = check_store(
                    catalogue=catalogue,
                    blobs=blobs,
                    embedder=embedder,
                    index=index,
                    index_source=source,
                    grace=grace,
                    settings=settings,
                )
            return index, report

        index, report = check()
        for line in report.lines():
            out.print(line, highlight=False)
        if repair and not report.consistent or repair and force and report.pending_blobs:
            empty = create_index(
                settings.index.kind,
                directory=settings.index_path,
                meta=IndexMeta(
                    model=embedder.name, model_version=embedder.version, dim=embedder.dim
                ),
            )
            services = Services(
                settings=settings,
                catalogue=catalogue,
                blobs=blobs,
                embedder=embedder,
                index=index or empty,
                # Only replaced (rebuilt and saved) if the repair rebuilds the indexes.
                descriptors=create_descriptor_index(
                    settings.index.descriptor_kind,
                    directory=settings.index_path,
                    meta=DescriptorMeta(features_key=FEATURES_KEY),
                ),
            )
            for action in repair_store(services, report, force=force):
                out.print(f"repair: {action}", highlight=False)
            _, report = check()
            out.print("after repair: " + report.lines()[-1], highlight=False)
    finally:
        catalogue.close()
    if not report.consistent:
        raise typer.Exit(1)
