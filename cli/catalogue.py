"""Registrars' commands: import a catalogue CSV, add photos, record an object's status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.app import app, err, open_services, out, progress_bar, settings_of
from cli.audit import cli_actor
from kernel.enums import ObjectStatus
from kernel.errors import InvalidInput

if TYPE_CHECKING:
    from engine.services import Services
    from ingest.photos import IngestOutcome


@app.command("import-catalogue")
def import_catalogue(
    ctx: typer.Context,
    csv_file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.csv", help="Catalogue CSV: image, object_id, Object ID fields."
        ),
    ],
    institution: Annotated[
        str, typer.Option(help="Institution of rows without an institution column.")
    ] = "default",
) -> None:
    """Import a catalogue CSV: one row per photo; rows may share an object."""
    from ingest.catalogue_csv import RowError, iter_items, read_catalogue_csv
    from ingest.photos import Outcome, ingest_photos

    try:
        parsed = read_catalogue_csv(csv_file, institution=institution)
    except OSError as exc:
        # A directory, or a file the reader could not open: one line, not a traceback.
        raise InvalidInput(f"{csv_file}: cannot read file ({exc.strerror or exc})") from None
    if parsed.ignored_columns:
        err.print(f"[yellow]ignored unknown column(s): {', '.join(parsed.ignored_columns)}")
    bad = [r for r in parsed.rows if isinstance(r, RowError)]
    items = list(iter_items(parsed))
    services = open_services(ctx)
    try:
        with progress_bar() as progress:
            task = progress.add_task("Importing photos", total=len(items))
            outcomes = ingest_photos(services, items, on_outcome=lambda _: progress.advance(task))
        audit_photos(services, "catalogue_import", csv_file.name, outcomes)
    finally:
        services.close()
    counts = {o: sum(x.outcome is o for x in outcomes) for o in Outcome}
    for row in bad:
        err.print(f"[red]skipped[/] {row.message}", markup=True, highlight=False)
    for o in outcomes:
        if o.outcome is Outcome.ERROR:
            err.print(f"[red]skipped[/] {o.message}", highlight=False)
        elif o.outcome is Outcome.DUPLICATE:
            err.print(f"[yellow]duplicate[/] {o.message}", highlight=False)
        elif o.possible_duplicates:
            err.print(f"[yellow]warning[/] {o.message}", highlight=False)
    failed = counts[Outcome.ERROR] + len(bad)
    near = sum(bool(o.possible_duplicates) for o in outcomes)
    out.print(
        f"{counts[Outcome.ADDED]} photo(s) added, {counts[Outcome.DUPLICATE]} duplicate(s), "
        f"{failed} bad row(s)" + (f", {near} possibly of another object" if near else "")
    )
    if failed:
        raise typer.Exit(1)


@app.command("add-photo")
def add_photo(
    ctx: typer.Context,
    object_id: Annotated[str, typer.Argument(metavar="OBJECT", help="Object ID (created if new).")],
    photos: Annotated[
        list[Path], typer.Argument(metavar="PHOTO...", help="One or more photo files.")
    ],
    view: Annotated[str | None, typer.Option(help="View label, e.g. front, back, detail.")] = None,
    institution: Annotated[str, typer.Option(help="Institution of a new object.")] = "default",
    title: Annotated[str | None, typer.Option(help="Title of a new object.")] = None,
    maker: Annotated[str | None, typer.Option(help="Maker of a new object.")] = None,
) -> None:
    """Add photos of one object."""
    from pydantic import ValidationError

    from ingest.catalogue_csv import validation_message
    from ingest.photos import Outcome, PhotoItem, ingest_photos
    from kernel.schemas import ObjectCreate

    try:
        record = ObjectCreate(
            object_id=object_id, institution=institution, title=title, maker=maker
        )
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from None
    items = [PhotoItem(record=record, source=str(p), load=p.read_bytes, view=view) for p in photos]
    services = open_services(ctx)
    try:
        outcomes = ingest_photos(services, items)
        audit_photos(services, "photo_add", object_id, outcomes)
    finally:
        services.close()
    for o in outcomes:
        if o.outcome is Outcome.ADDED:
            out.print(f"added {o.source} as photo {o.photo_id} of {o.object_id}")
            if o.possible_duplicates:
                err.print(f"[yellow]warning[/] {o.message}", highlight=False)
        elif o.outcome is Outcome.DUPLICATE:
            out.print(f"[yellow]duplicate[/] {o.message}")
        else:
            err.print(f"[red]error[/] {o.message}", highlight=False)
    if any(o.outcome is Outcome.ERROR for o in outcomes):
        raise typer.Exit(1)


@app.command("set-status")
def set_status(
    ctx: typer.Context,
    object_id: Annotated[str, typer.Argument(metavar="OBJECT")],
    status: Annotated[
        str,
        typer.Argument(
            metavar="STATUS", help="in_collection, on_loan, stolen, missing or recovered."
        ),
    ],
    reference: Annotated[
        str | None, typer.Option(help="Police or case reference of the loss.")
    ] = None,
    date: Annotated[
        str | None, typer.Option(help="Date of the loss or change, YYYY-MM-DD (default today).")
    ] = None,
    note: Annotated[
        str | None, typer.Option(help="Free-text note kept in the status history.")
    ] = None,
) -> None:
    """Change an object's status (e.g. report it stolen)."""
    from kernel.schemas import StatusChange
    from storage.catalogue import create_catalogue

    change = StatusChange(
        status=parse_status(status), date=_date(date), reference=reference, note=note
    )
    from storage.catalogue.audit import AuditLog

    catalogue = create_catalogue(settings_of(ctx).database_url)
    try:
        obj = catalogue.set_status(object_id, change)
        AuditLog(catalogue.engine).append(
            actor=cli_actor(),
            action="object_status",
            subject=obj.object_id,
            details=change.model_dump(mode="json"),
        )
    finally:
        catalogue.close()
    out.print(
        f"{obj.object_id} is now {obj.status.value}" + (f" (ref {reference})" if reference else "")
    )
    _after_status(ctx, obj.object_id, obj.status)


def _after_status(ctx: typer.Context, object_id: str, status: ObjectStatus) -> None:
    """What the service does on a new status, here and now: a loss re-checks every listing
    already checked (alerts, webhooks); a recovery closes the object's alerts."""
    from kernel.enums import LOST_STATUSES
    from kernel.settings import WebSettings
    from service.operations import alerts
    from service.runtime import open_runtime
    from storage.catalogue.alerts import AlertStore

    if status not in LOST_STATUSES and status is not ObjectStatus.RECOVERED:
        return
    runtime = open_runtime(settings_of(ctx), WebSettings())
    try:
        if status is ObjectStatus.RECOVERED:
            closed = alerts.close_alerts(
                runtime, object_id=object_id, actor=cli_actor(), reason="recovered"
            )
            out.print(f"{closed} open alert(s) of {object_id} closed")
            return
        run = AlertStore(runtime.catalogue.engine).start_recheck(
            object_id=object_id, requested_by=cli_actor()
        )
        services = open_services(ctx)
        try:
            with err.status(f"Re-checking the listings already checked for {object_id}..."):
                done = alerts.finish_recheck(
                    runtime, services, run=run, object_id=object_id, actor=cli_actor()
                )
        finally:
            services.close()
    finally:
        runtime.catalogue.close()
    if done.status != "succeeded":
        err.print(f"[red]re-check failed[/] {done.error}", highlight=False)
        raise typer.Exit(1)
    out.print(
        f"re-checked {done.listings} listing(s) in {done.seconds or 0:.1f} s: "
        f"{done.hits} showing {object_id}, {done.new_alerts} new alert(s)"
    )


def audit_photos(
    services: Services, action: str, subject: str, outcomes: list[IngestOutcome]
) -> None:
    """Chain who added which photos to which objects, as the web service does for uploads."""
    from ingest.photos import Outcome
    from storage.catalogue.audit import AuditLog

    added: dict[str, list[int]] = {}
    for o in outcomes:
        if o.outcome is Outcome.ADDED and o.photo_id is not None:
            added.setdefault(o.object_id or "", []).append(o.photo_id)
    if added:
        AuditLog(services.catalogue.engine).append(
            actor=cli_actor(), action=action, subject=subject, details={"photos": added}
        )


def parse_status(value: str) -> ObjectStatus:
    try:
        return ObjectStatus(value.strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        raise InvalidInput(
            f"unknown status {value!r}; choose one of: {', '.join(s.value for s in ObjectStatus)}"
        ) from None


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"invalid date {value!r}; expected YYYY-MM-DD") from None
