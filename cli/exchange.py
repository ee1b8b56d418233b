"""Catalogue exchange: import LIDO files, harvest LIDO over OAI-PMH, export LIDO, CSV or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.app import app, err, open_services, out, output_file, progress_bar, settings_of
from cli.audit import cli_actor
from cli.catalogue import audit_photos, parse_status
from kernel.errors import InvalidInput

if TYPE_CHECKING:
    from ingest.lido import RecordError
    from ingest.photos import IngestOutcome


def _report(bad: list[RecordError], outcomes: list[IngestOutcome]) -> int:
    """Print what was skipped; returns how many records or photos failed."""
    from ingest.photos import Outcome

    for row in bad:
        err.print(f"[red]skipped[/] {row.message}", highlight=False)
    for o in outcomes:
        if o.outcome is Outcome.ERROR:
            err.print(f"[red]skipped[/] {o.message}", highlight=False)
        elif o.possible_duplicates:
            err.print(f"[yellow]warning[/] {o.message}", highlight=False)
    added = sum(o.outcome is Outcome.ADDED for o in outcomes)
    dupes = sum(o.outcome is Outcome.DUPLICATE for o in outcomes)
    failed = sum(o.outcome is Outcome.ERROR for o in outcomes) + len(bad)
    objects = len({o.object_id for o in outcomes if o.outcome is Outcome.ADDED})
    out.print(
        f"{added} photo(s) of {objects} object(s) added, {dupes} duplicate(s), "
        f"{failed} bad record(s) or photo(s)"
    )
    return failed


@app.command("import-lido")
def import_lido(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Argument(
            metavar="FILE|DIR", help="A LIDO 1.1 XML file, or a folder of them (*.xml)."
        ),
    ],
    institution: Annotated[
        str, typer.Option(help="Institution of records that name no repository.")
    ] = "default",
) -> None:
    """Import LIDO records: their Object ID fields and their photos (files beside the XML,
    or URLs on hosts in ARTMATCH_EXCHANGE__IMAGE_HOSTS)."""
    from ingest.lido import RecordError, UrlFetcher, lido_files, read_lido_file
    from ingest.photos import PhotoItem, ingest_photos

    settings = settings_of(ctx)
    files = lido_files(source)
    if not files:
        raise InvalidInput(f"{source}: no .xml files in this folder")
    fetcher = UrlFetcher.from_settings(settings.exchange, max_bytes=settings.max_upload_bytes)
    rows = [
        row
        for f in files
        for row in read_lido_file(f, fetcher=fetcher, institution=institution).rows
    ]
    bad = [r for r in rows if isinstance(r, RecordError)]
    items = [r for r in rows if isinstance(r, PhotoItem)]
    services = open_services(ctx)
    try:
        with progress_bar() as progress:
            task = progress.add_task("Importing photos", total=len(items))
            outcomes = ingest_photos(services, items, on_outcome=lambda _: progress.advance(task))
        audit_photos(services, "lido_import", source.name, outcomes)
    finally:
        services.close()
    if _report(bad, outcomes):
        raise typer.Exit(1)


@app.command("harvest-oai")
def harvest_oai(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="OAI-PMH base URL.")],
    set_spec: Annotated[
        str | None, typer.Option("--set", help="Harvest only this OAI-PMH set.")
    ] = None,
    from_date: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Records changed since this datestamp (default: since the last harvest).",
        ),
    ] = None,
    institution: Annotated[
        str, typer.Option(help="Institution of records that name no repository.")
    ] = "default",
) -> None:
    """Harvest LIDO records (metadataPrefix lido) from an OAI-PMH endpoint; re-runnable."""
    from ingest.oaipmh import harvest
    from ingest.photos import ingest_photos

    services = open_services(ctx)
    try:
        result = harvest(
            services.settings,
            ingest=lambda items: ingest_photos(services, items),
            url=url,
            set_spec=set_spec,
            from_date=from_date,
            institution=institution,
            on_page=lambda page, r: err.print(
                f"page {page.number}: {r.records} record(s) so far", highlight=False
            ),
        )
        audit_photos(services, "oai_harvest", url, result.outcomes)
    finally:
        services.close()
    if result.deleted:
        err.print(f"{len(result.deleted)} record(s) deleted at the source were left alone")
    failed = _report(result.errors, result.outcomes)
    out.print(
        f"{result.records} record(s) in {result.pages} page(s)"
        + (f" since {result.from_date}" if result.from_date else "")
    )
    if failed:
        raise typer.Exit(1)


@app.command("export")
def export(
    ctx: typer.Context,
    out_file: Annotated[
        Path, typer.Argument(metavar="OUT", help="File to write; photos go to OUT-photos/.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="lido, csv or json.")] = "lido",
    institution: Annotated[
        list[str] | None, typer.Option(help="Only this institution (repeatable).")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Only objects of this status (repeatable).")
    ] = None,
    object_id: Annotated[
        list[str] | None, typer.Option("--object", help="Only this object (repeatable).")
    ] = None,
) -> None:
    """Export the catalogue, or a selection, as LIDO 1.1 XML or Object ID CSV or JSON."""
    from ingest.export import ExportFormat, export_catalogue, select_objects
    from storage.blobs import create_blob_store
    from storage.catalogue import create_catalogue
    from storage.catalogue.audit import AuditLog

    try:
        chosen = ExportFormat(fmt.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown format {fmt!r}; choose lido, csv or json") from None
    statuses = [parse_status(s) for s in status or []]
    output_file(out_file, option="OUT")
    settings = settings_of(ctx)
    if not Path(settings.database_url.removeprefix("sqlite:///")).exists() and (
        settings.database_url.startswith("sqlite:///")
    ):
        raise InvalidInput(f"{settings.home}: no catalogue here")
    catalogue = create_catalogue(settings.database_url)
    try:
        objects = select_objects(
            catalogue.engine,
            institutions=institution or [],
            statuses=statuses,
            object_ids=object_id or [],
        )
        result = export_catalogue(
            engine=catalogue.engine,
            blobs=create_blob_store(settings),
            objects=objects,
            out=out_file,
            fmt=chosen,
        )
        # Who took which records out of the catalogue, chained like its changes.
        AuditLog(catalogue.engine).append(
            actor=cli_actor(),
            action="catalogue_export",
            subject=out_file.name,
            details={
                "format": chosen.value,
                "objects": [o.object_id for o in objects],
                "photos": result.photos,
            },
        )
    finally:
        catalogue.close()
    out.print(
        f"{result.objects} object(s), {result.photos} photo(s) written to {result.path} "
        f"(photos in {result.photo_dir})"
    )
