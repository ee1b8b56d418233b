"""Investigators' and analysts' commands: search with a photo, check auction listings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from cli.app import app, err, open_services, out, output_file, output_folder, progress_bar
from cli.audit import cli_actor
from cli.catalogue import parse_status
from kernel.enums import Decision
from kernel.errors import InvalidInput
from kernel.schemas import confidence_text


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
    case_reference: Annotated[
        str | None, typer.Option(help="Case reference, kept in the search log.")
    ] = None,
) -> None:
    """Search the catalogue with a photo; best matches first. The search is logged (and
    chained in the audit log) as the operating-system user."""
    from engine.reports import search_record
    from engine.search import search as run_search
    from models.images import decode_image
    from storage.catalogue.search_log import SearchLog

    if case_reference is not None and len(case_reference) > 500:
        raise InvalidInput("--case-reference: at most 500 characters")
    statuses = [parse_status(s) for s in status.split(",") if s.strip()] if status else None
    institutions = [s.strip() for s in institution.split(",") if s.strip()] if institution else None
    try:
        data = photo.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{photo}: cannot read file ({exc.strerror or exc})") from None
    if evidence is not None:
        output_folder(evidence, option="--evidence")
    services = open_services(ctx)
    try:
        image = decode_image(data, source=str(photo), max_pixels=services.settings.max_image_pixels)
        result = run_search(
            services, image, top_k=top, statuses=statuses, institutions=institutions, verify=verify
        )
        best = result.hits[0] if result.hits else None
        SearchLog(services.catalogue.engine).log_search(
            username=cli_actor(),
            account_id=None,
            case_reference=case_reference,
            query_sha256=result.query_sha256,
            filters={"statuses": statuses, "institutions": institutions},
            matches=len(result.matches),
            top_object_id=best.object_id if best else None,
            top_similarity=best.similarity if best else None,
            via="cli",
            # Kept for `artmatch report make`: what came back and what was searched.
            record=search_record(services, result),
        )
        written = _write_evidence(services, image, result, evidence, photo.name) if evidence else []
    finally:
        services.catalogue.close()
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    _print_result(photo.name, result)
    for path in written:
        out.print(f"evidence: {path}")


_DECISION_WORDS = {Decision.MATCH: "MATCH", Decision.LEAD: "lead", Decision.NONE: ""}


def _print_result(name: str, result) -> None:  # type: ignore[no-untyped-def]
    searched = (
        f"{result.objects_searched} objects"
        + (f" ({', '.join(result.statuses)})" if result.statuses else "")
        + (f" of {', '.join(result.institutions)}" if result.institutions else "")
    )
    # Fits an 80-column terminal: no borders, no rank column (the order is the rank), the
    # title under the object id instead of a column of its own. Only text wraps; the object
    # id, decision and confidence are never cut to "…", they are what is read.
    table = Table(
        title=f"{name}: {searched} searched, index v{result.index_version}, "
        f"{result.threshold_on} threshold {result.threshold:.3g}",
        box=None,
        pad_edge=False,
        header_style="bold underline",
    )
    table.add_column("object / title", overflow="fold", ratio=1)
    for col in ("decision", "confidence", "similarity", "inliers", "status"):
        table.add_column(col, no_wrap=True)
    for h in result.hits:
        label: RenderableType = Text(h.object_id, style="bold", overflow="fold")
        if h.title:
            label = Group(label, Padding(Text(h.title, style="dim", overflow="fold"), (0, 0, 0, 2)))
        table.add_row(
            label,
            _DECISION_WORDS[h.decision],
            # A confidence below the threshold proves nothing: shown for matches only.
            confidence_text(h.confidence) if h.is_match and h.confidence is not None else "",
            f"{h.similarity:.3f}",
            "" if h.inliers is None else str(h.inliers),
            h.status.value,
        )
    # soft_wrap=False: `out` soft-wraps, and the table's title must wrap to the width too.
    out.print(table, soft_wrap=False)
    for h in result.matches:
        if h.region is not None:
            out.print(f"{h.object_id}: matched region {','.join(map(str, h.region))} (x0,y0,x1,y1)")
    for region in result.regions:
        if region.also:
            out.print(
                f"[yellow]{region.object_id} and {', '.join(region.also)} verify on the same "
                f"region {','.join(map(str, region.box))}: they may be one object catalogued "
                "twice.[/]"
            )
    if result.matches:
        return
    if result.leads:
        ids = ", ".join(h.object_id for h in result.leads)
        out.print(
            f"[bold]No match.[/] Only leads (similar, not verified by matching points): {ids}. "
            "Check them by eye; they are no evidence."
        )
    else:
        out.print("[bold]No match in the catalogue.[/]")


def _write_evidence(services, image, result, directory: Path, query_file: str = "") -> list[Path]:  # type: ignore[no-untyped-def]
    from engine.evidence import evidence_png

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for hit in result.matches:
        path = directory / f"evidence_{result.query_sha256[:12]}_{hit.rank:02d}_{hit.object_id}.png"
        try:
            path.write_bytes(evidence_png(services, image, hit, query_name=query_file))
        except OSError as exc:
            raise InvalidInput(f"--evidence {path}: cannot write ({exc.strerror or exc})") from None
        paths.append(path)
    return paths


@app.command("check-listings")
def check_listings(
    ctx: typer.Context,
    manifest: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST",
            help="CSV or JSONL: listing_id, image, [venue, title, url, seller, price, date].",
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
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Where to check: 'local' (Dask worker processes here), 'none' (this process) "
            "or a Dask scheduler address tcp://host:8786 (default: ARTMATCH_BATCH__SCHEDULER).",
        ),
    ] = None,
) -> None:
    """Cross-check auction listings against stolen and missing objects; write a hit report.
    Runs on a Dask cluster unless the manifest is small (see ARTMATCH_BATCH__*); an
    interrupted run resumes where it stopped when run again."""
    from ingest.listings import check_listings as run_check
    from ingest.listings import read_manifest, write_report

    if scheduler is not None:
        _check_scheduler(scheduler)
    total = len(read_manifest(manifest))  # fail on a malformed manifest before loading the model
    stem = out_stem or manifest.with_name(manifest.stem + ".hits")
    # Both report files checked now, not after the run: an hour of checks must not end in an
    # error about the report's folder.
    for suffix in (".csv", ".json"):
        output_file(stem.with_name(stem.name + suffix), option="--out")
    services = open_services(ctx)
    try:
        with progress_bar() as progress:
            task = progress.add_task("Checking listings", total=total)
            run = run_check(
                services,
                manifest,
                recheck=recheck,
                scheduler=scheduler,
                on_progress=lambda n, _t: progress.update(task, completed=n),
            )
        _audit_run(services, manifest, run)
        try:
            csv_path, json_path = write_report(services, run, stem)
        except OSError as exc:
            # The checks are stored: a re-run with another --out writes the report only.
            raise InvalidInput(
                f"--out {stem}: cannot write the report ({exc.strerror or exc}); the checks are "
                "kept, run again with another --out"
            ) from None
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


def _check_scheduler(value: str) -> None:
    from pydantic import ValidationError

    from kernel.settings import BatchSettings

    try:
        BatchSettings(scheduler=value)
    except ValidationError:
        raise InvalidInput(
            f"--scheduler {value!r}: expected 'local', 'none' or a Dask scheduler address "
            "such as tcp://host:8786"
        ) from None


def _audit_run(services, manifest: Path, run) -> None:  # type: ignore[no-untyped-def]
    """One audit chain entry per run, as the web service's jobs log theirs."""
    import hashlib

    from storage.catalogue.audit import AuditLog

    digest = None
    # A plain file only: whatever else the manifest path is must not hang the command here.
    if manifest.is_file():
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    AuditLog(services.catalogue.engine).append(
        actor=cli_actor(),
        action="listing_check",
        subject=f"manifest {manifest.name}",
        details={
            "manifest": manifest.name,
            "manifest_sha256": digest,
            "listings": run.total,
            "checked": run.checked,
            "skipped": run.skipped,
            "hits": run.hits,
            "errors": len(run.errors),
        },
    )
