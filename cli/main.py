"""Entry point of the `artmatch` command: imports every command module (each registers its
commands on `cli.app.app`) and turns artmatch errors into one line and an exit status."""

from __future__ import annotations

import importlib
import sys

from cli.app import app, err
from kernel.errors import ArtmatchError

__all__ = ["app", "main"]

#: The command modules, in the order `artmatch --help` lists their commands. Each registers
#: its commands on `app` when imported; a new command goes into one of these (or a new one
#: named here).
COMMAND_MODULES = (
    "catalogue",
    "exchange",
    "search",
    "maintenance",
    "index",
    "fsck",
    "db",
    "audit",
    "reports",
    "evaluate",
    "service",
)
for _name in COMMAND_MODULES:
    importlib.import_module(f"cli.{_name}")


def main() -> None:
    try:
        app()
    except ArtmatchError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: work committed so far is kept; run the command again to resume")
        sys.exit(130)
