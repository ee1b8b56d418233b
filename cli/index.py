"""`artmatch index status` and `artmatch index train`: the vector index that scales."""

from __future__ import annotations

import typer

from cli.app import app, open_services, out
from kernel.errors import InvalidInput

__all__ = ["index_app"]

index_app = typer.Typer(
    name="index",
    help="The vector index: show how it searches, (re)train it for the catalogue's size.",
    no_args_is_help=True,
)


@index_app.command()
def status(ctx: typer.Context) -> None:
    """Show the index type, its size, how it searches and whether it wants training."""
    services = open_services(ctx)
    try:
        index = services.index
        out.print(f"kind: {services.settings.index.kind}")
        describe = getattr(index, "describe", None)
        if describe is None:
            out.print(f"photos: {index.size}\nsearch: exact")
            return
        for key, value in describe().items():
            out.print(f"{key.replace('_', ' ')}: {value}")
    finally:
        services.close()


@index_app.command()
def train(ctx: typer.Context) -> None:
    """(Re)train the ``auto`` index on the catalogue's vectors now and rewrite its files
    (exact search again if the catalogue is within ARTMATCH_INDEX__EXACT_UP_TO)."""
    services = open_services(ctx)
    try:
        index = services.index
        if not hasattr(index, "train"):
            raise InvalidInput(
                f"index kind {services.settings.index.kind!r} is not trained; "
                "set ARTMATCH_INDEX__KIND=auto"
            )
        with services.lock:
            index.train()
            services.save_index()
        mode = "ivf-pq" if index.trained else "exact"  # type: ignore[attr-defined]
        out.print(f"index trained: {index.size} photos, {mode} search")
    finally:
        services.close()


app.add_typer(index_app)
