"""The `artmatch` Typer app and what every command shares: consoles, progress bars, settings
and the assembled services. The commands live beside it, one module per area, and register
themselves on `app` when `cli.main` imports them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kernel.settings import Settings, get_settings

if TYPE_CHECKING:
    from engine.services import Services

__all__ = ["app", "err", "open_services", "out", "progress_bar", "settings_of"]

app = typer.Typer(
    name="artmatch",
    help="Find stolen cultural objects: match photos against museum catalogues.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else get_settings()


def open_services(ctx: typer.Context) -> Services:
    # Imported here: `artmatch --help` should not load FAISS and SQLAlchemy.
    from engine.services import build_services

    with err.status("Loading model and index..."):
        services = build_services(settings_of(ctx))
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
