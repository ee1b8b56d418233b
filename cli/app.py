"""The `artmatch` Typer app and what every command shares: consoles, progress bars, settings
and the assembled services. The commands live beside it, one module per area, and register
themselves on `app` when `cli.main` imports them."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kernel.errors import InvalidInput
from kernel.memory import keep_freed_memory
from kernel.settings import Settings, get_settings
from kernel.threads import configure_threads

if TYPE_CHECKING:
    from engine.services import Services

__all__ = [
    "HOME_CREATING_COMMANDS",
    "app",
    "err",
    "open_services",
    "out",
    "output_file",
    "output_folder",
    "progress_bar",
    "require_home",
    "settings_of",
]

#: Commands that start a new data directory when ``--home`` names one that does not exist yet
#: (`serve` only with ``--demo``). Every other command refuses a missing ``--home``: a typo
#: there used to create an empty catalogue and answer "no match" from it.
HOME_CREATING_COMMANDS = frozenset(
    # import-lido and harvest-oai (issue 12, exchange) import into a new home like import-catalogue.
    {"import-catalogue", "import-lido", "harvest-oai", "add-photo", "create-admin", "serve"}
)
_MISSING_HOME = "artmatch.missing_home"

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
    create_home: Annotated[
        bool,
        typer.Option(
            "--create-home",
            help="Create the --home directory if it does not exist (import-catalogue, "
            "import-lido, harvest-oai, add-photo, create-admin and serve --demo do without "
            "asking).",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    # Every command: numpy's BLAS threads would fight torch and OpenCV for the cores.
    configure_threads(get_settings().threads)
    keep_freed_memory(get_settings().keep_freed_mb)
    if home is None:
        return
    if home.exists() and not home.is_dir():
        raise InvalidInput(f"--home {home}: not a directory")
    if not home.exists() and not create_home:
        if ctx.invoked_subcommand not in HOME_CREATING_COMMANDS:
            raise InvalidInput(_missing_home_message(home))
        # `serve` decides once it knows whether --demo was given (`require_home`).
        ctx.meta[_MISSING_HOME] = home
    ctx.obj = get_settings().model_copy(update={"home": home})


def require_home(ctx: typer.Context) -> None:
    """Refuse a ``--home`` that does not exist, for a command that creates one only sometimes."""
    home = ctx.meta.get(_MISSING_HOME)
    if home is not None:
        raise InvalidInput(_missing_home_message(home))


def _missing_home_message(home: Path) -> str:
    return f"--home {home}: no such directory (check the path, or add --create-home to start one)"


def output_file(path: Path, *, option: str) -> Path:
    """``path`` when a file can be written there, else a one-line `InvalidInput`.

    Checked before the work that produces the file, so a run of an hour does not end in a
    traceback about its report.
    """
    if path.is_dir():
        raise InvalidInput(f"{option} {path}: is a directory; name a file in it")
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{option} {path}: {folder} is not a folder")
    if not folder.is_dir():
        raise InvalidInput(f"{option} {path}: folder {folder} does not exist")
    _probe(folder, option=option, path=path)
    return path


def output_folder(path: Path, *, option: str) -> Path:
    """``path`` made if missing, when files can be written in it; else a one-line
    `InvalidInput`."""
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"{option} {path}: not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"{option} {path}: cannot create it ({exc.strerror or exc})") from None
    _probe(path, option=option, path=path)
    return path


def _probe(folder: Path, *, option: str, path: Path) -> None:
    # Writing a scratch file is the only reliable test: os.access says yes to root on a
    # folder of mode 0500, and knows nothing of read-only or virtual file systems.
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidInput(f"{option} {path}: cannot write in {folder} ({reason})") from None
