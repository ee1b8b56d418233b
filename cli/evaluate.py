"""`artmatch eval`: recall, false matches and speed on a set in the evaluation layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID
from rich.table import Table

from cli.app import app, err, out, progress_bar, settings_of


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

    settings = settings_of(ctx)
    with err.status("Loading model..."):
        embedder = create_embedder(settings.embedder)
    with progress_bar() as progress:
        tasks: dict[str, TaskID] = {}

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
