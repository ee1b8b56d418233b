"""The `artmatch` command line: import a catalogue, search with a photo, check listings, eval."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from artmatch.config import Settings, get_settings
from artmatch.errors import ArtmatchError, InvalidInput

__all__ = ["app", "main"]

app = typer.Typer(
    name="artmatch",
    help="Find stolen cultural objects: match photos against museum catalogues.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else get_settings()


def _services(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from artmatch.container import build_services

    with err.status("Loading model and index..."):
        services = build_services(_settings(ctx))
    if services.index_rebuilt and services.index.size:
        err.print(
            f"[yellow]index was missing or stale: rebuilt from {services.index.size} stored vectors"
        )
    return services


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Data directory (catalogue, photos, index); env ARTMATCH_HOME."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    if home is not None:
        ctx.obj = get_settings().model_copy(update={"home": home})


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

    parsed = read_catalogue_csv(csv_file, institution=institution)
    if parsed.ignored_columns:
        err.print(f"[yellow]ignored unknown column(s): {', '.join(parsed.ignored_columns)}")
    bad = [r for r in parsed.rows if isinstance(r, RowError)]
    items = list(iter_items(parsed))
    services = _services(ctx)
    try:
        with _progress() as progress:
            task = progress.add_task("Importing photos", total=len(items))
            outcomes = ingest_photos(services, items, on_outcome=lambda _: progress.advance(task))
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
    failed = counts[Outcome.ERROR] + len(bad)
    out.print(
        f"{counts[Outcome.ADDED]} photo(s) added, {counts[Outcome.DUPLICATE]} duplicate(s), "
        f"{failed} bad row(s)"
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

    from artmatch.schemas import ObjectCreate
    from ingest.catalogue_csv import validation_message
    from ingest.photos import Outcome, PhotoItem, ingest_photos

    try:
        record = ObjectCreate(
            object_id=object_id, institution=institution, title=title, maker=maker
        )
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from None
    items = [PhotoItem(record=record, source=str(p), load=p.read_bytes, view=view) for p in photos]
    services = _services(ctx)
    try:
        outcomes = ingest_photos(services, items)
    finally:
        services.close()
    for o in outcomes:
        if o.outcome is Outcome.ADDED:
            out.print(f"added {o.source} as photo {o.photo_id} of {o.object_id}")
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
    from artmatch.schemas import StatusChange
    from storage.catalogue import create_catalogue

    change = StatusChange(status=_status(status), date=_date(date), reference=reference, note=note)
    catalogue = create_catalogue(_settings(ctx).database_url)
    try:
        obj = catalogue.set_status(object_id, change)
    finally:
        catalogue.close()
    out.print(
        f"{obj.object_id} is now {obj.status.value}" + (f" (ref {reference})" if reference else "")
    )


def _status(value: str):  # type: ignore[no-untyped-def]
    from artmatch.schemas import ObjectStatus

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


@app.command()
def search(
    ctx: typer.Context,
    photo: Annotated[Path, typer.Argument(metavar="PHOTO", help="Photo of the seized item.")],
    top: Annotated[
        int, typer.Option("--top", min=1, max=100, help="How many objects to list.")
    ] = 10,
    status: Annotated[
        str | None,
        typer.Option(
            help="Only objects with these statuses, comma-separated (e.g. stolen,missing)."
        ),
    ] = None,
    institution: Annotated[
        str | None, typer.Option(help="Only objects of these institutions, comma-separated.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    evidence: Annotated[
        Path | None,
        typer.Option(help="Write an evidence picture (PNG) of each match into this directory."),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Geometric verification (second stage).")
    ] = True,
) -> None:
    """Search the catalogue with a photo; best matches first."""
    from artmatch.matching import search as run_search
    from models.images import decode_image

    statuses = [_status(s) for s in status.split(",") if s.strip()] if status else None
    institutions = [s.strip() for s in institution.split(",") if s.strip()] if institution else None
    try:
        data = photo.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{photo}: cannot read file ({exc.strerror or exc})") from None
    services = _services(ctx)
    try:
        image = decode_image(data, source=str(photo), max_pixels=services.settings.max_image_pixels)
        result = run_search(
            services, image, top_k=top, statuses=statuses, institutions=institutions, verify=verify
        )
        written = _write_evidence(services, image, result, evidence) if evidence else []
    finally:
        services.catalogue.close()
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    _print_result(photo.name, result)
    for path in written:
        out.print(f"evidence: {path}")


def _print_result(name: str, result) -> None:  # type: ignore[no-untyped-def]
    searched = (
        f"{result.objects_searched} objects"
        + (f" ({', '.join(result.statuses)})" if result.statuses else "")
        + (f" of {', '.join(result.institutions)}" if result.institutions else "")
    )
    table = Table(
        title=f"{name}: {searched} searched, index v{result.index_version}, "
        f"{result.threshold_kind} threshold {result.threshold:.2f}"
    )
    columns = (
        "#",
        "object",
        "confidence",
        "cosine",
        "inliers",
        "match",
        "status",
        "title",
        "region",
    )
    for col in columns:
        table.add_column(col)
    for h in result.hits:
        table.add_row(
            str(h.rank),
            h.object_id,
            f"{h.confidence:.3f}",
            f"{h.score:.3f}",
            "" if h.inliers is None else str(h.inliers),
            "MATCH" if h.is_match else "",
            h.status.value,
            h.title or "",
            "" if h.region is None else ",".join(map(str, h.region)),
        )
    out.print(table)
    if not result.matches:
        out.print("[bold]No match in the catalogue above the threshold.[/]")


def _write_evidence(services, image, result, directory: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    from artmatch.evidence import evidence_png

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for hit in result.matches:
        path = directory / f"evidence_{result.query_sha256[:12]}_{hit.rank:02d}_{hit.object_id}.png"
        path.write_bytes(evidence_png(services, image, hit))
        paths.append(path)
    return paths


@app.command("check-listings")
def check_listings(
    ctx: typer.Context,
    manifest: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST",
            help="CSV or JSONL: listing_id, image, [title, url, seller, price, date].",
        ),
    ],
    out_stem: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Report path without suffix (default: MANIFEST's name + '.hits')."
        ),
    ] = None,
    recheck: Annotated[
        bool, typer.Option(help="Check again listings checked by earlier runs.")
    ] = False,
) -> None:
    """Cross-check auction listings against stolen and missing objects; write a hit report."""
    from ingest.listings import check_listings as run_check
    from ingest.listings import read_manifest, write_report

    total = len(read_manifest(manifest))  # fail on a malformed manifest before loading the model
    services = _services(ctx)
    try:
        with _progress() as progress:
            task = progress.add_task("Checking listings", total=total)
            run, listings = run_check(
                services,
                manifest,
                recheck=recheck,
                on_progress=lambda n, _t: progress.update(task, completed=n),
            )
        stem = out_stem or manifest.with_name(manifest.stem + ".hits")
        csv_path, json_path = write_report(services, listings, stem)
    finally:
        services.catalogue.close()
    for message in run.errors:
        err.print(f"[red]error[/] {message}", highlight=False)
    out.print(
        f"{run.total} listing(s): {run.checked} checked now, {run.skipped} already checked, "
        f"{run.hits} new hit(s), {len(run.errors)} error(s)\nreport: {csv_path} and {json_path}"
    )
    if run.errors:
        raise typer.Exit(1)


@app.command()
def reindex(ctx: typer.Context) -> None:
    """Rebuild the vector index from stored vectors; embed photos that have none for this model."""
    from artmatch.container import open_index
    from ingest.reembed import reembed_missing

    services = _services(ctx)
    try:
        with _progress() as progress:
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


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    set_dir: Annotated[Path, typer.Argument(metavar="SET", help="A set in the evaluation layout.")],
    distractors: Annotated[
        Path | None, typer.Option(help="Directory of unrelated photos added as extra objects.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as one JSON object on the last line.")
    ] = False,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Second stage on (default) or off, to compare."),
    ] = True,
) -> None:
    """Measure recall, MRR, false matches and speed on an evaluation set."""
    from ingest.evaluation import run_eval
    from models.embedders import create_embedder

    settings = _settings(ctx)
    with err.status("Loading model..."):
        embedder = create_embedder(settings.embedder)
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, n: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage.capitalize(), total=total)
            progress.update(tasks[stage], completed=n)

        report = run_eval(
            set_dir,
            settings=settings,
            embedder=embedder,
            distractors=distractors,
            verify=verify,
            progress=on_progress,
        )
    for failure in report.failures[:20]:
        err.print(f"[yellow]not ingested[/] {failure}", highlight=False)
    figures = report.as_dict()
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title=f"eval {set_dir}" + (f" + {distractors}" if distractors else ""))
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, "n/a" if value is None else str(value))
    out.print(table)


def main() -> None:
    try:
        app()
    except ArtmatchError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: work committed so far is kept; run the command again to resume")
        sys.exit(130)


from ingest.fsck_cli import register as _register_fsck  # noqa: E402
from storage.migrate_cli import register as _register_db  # noqa: E402

_register_db(app)
_register_fsck(app)
from service.cli_commands import register as _register_service_commands  # noqa: E402

_register_service_commands(app)
