"""The web service's commands: `serve`, `worker`, `prune-uploads`, `create-admin`,
`create-token`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import app, output_file, require_home, settings_of
from kernel.errors import InvalidInput
from kernel.settings import Settings

__all__ = ["create_admin", "create_token", "prune_uploads", "serve", "worker"]


def _accounts(settings: Settings):  # type: ignore[no-untyped-def]
    from storage.catalogue import create_catalogue
    from storage.catalogue.accounts import Accounts

    settings.home.mkdir(parents=True, exist_ok=True)
    return Accounts(create_catalogue(settings.database_url).engine)


def seed_demo(settings: Settings, *, n_objects: int = 12) -> int:
    """A small generated catalogue (synthetic 'paintings', two of them reported stolen) when
    the catalogue is empty; returns the number of objects added."""
    from service.demo import seed

    return seed(settings, n_objects=n_objects)


@app.command()
def worker(
    ctx: typer.Context,
    poll_seconds: Annotated[
        float, typer.Option(min=0.1, help="Seconds between looks for queued jobs.")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Run the queued jobs, then exit.")] = False,
) -> None:
    """Run the batch jobs the web service queues (with ARTMATCH_WEB_JOB_WORKERS=0)."""
    from service.worker import run_worker

    settings = settings_of(ctx)
    typer.echo(f"artmatch worker: waiting for batch jobs in {settings.database_url.split('@')[-1]}")
    count = run_worker(
        settings,
        poll_seconds=poll_seconds,
        once=once,
        on_job=lambda job_id: typer.echo(f"job {job_id} finished"),
    )
    typer.echo(f"artmatch worker: {count} job(s) run")


@app.command("prune-uploads")
def prune_uploads(
    ctx: typer.Context,
    days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Keep this many days (default: ARTMATCH_WEB_UPLOAD_RETENTION_DAYS, 90)."
        ),
    ] = None,
) -> None:
    """Delete uploaded listing manifests and their photos once their job finished long ago."""
    from kernel.settings import WebSettings
    from service.jobs import prune_uploads as prune
    from storage.catalogue import create_catalogue
    from storage.catalogue.jobs import Jobs

    settings = settings_of(ctx)
    keep = days or WebSettings().upload_retention_days
    catalogue = create_catalogue(settings.database_url)
    try:
        deleted = prune(Jobs(catalogue.engine), settings.home / "manifests", days=keep)
    finally:
        catalogue.close()
    typer.echo(f"{len(deleted)} uploaded manifest folder(s) older than {keep} day(s) deleted")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Seed a small generated demo catalogue if the catalogue is empty, and "
            "print how to log in.",
        ),
    ] = False,
) -> None:
    """Start the web service (pages and the JSON API under /api/v1)."""
    import uvicorn

    from service.main import create_app

    if not demo:
        require_home(ctx)
    settings = settings_of(ctx)
    accounts = _accounts(settings)
    password = None
    if demo:
        from service.demo import DEMO_ACCOUNTS, seed_accounts

        added = seed_demo(settings)
        if added:
            typer.echo(f"Demo catalogue: {added} generated objects added to {settings.home}.")
            typer.echo(
                f"Photos to try: {settings.home / 'manifests' / 'demo'} "
                "(stolen-DEMO-002.jpg, unrelated.jpg, listings.csv)"
            )
        password = seed_accounts(settings)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    typer.echo(f"artmatch is starting at {url}  (API docs: {url}api/docs)")
    if password:
        typer.echo(
            "Demo accounts (one per role), all with the password printed here once:\n"
            f"    password: {password}\n"
            + "".join(f"    {name}  ({role})\n" for name, (role, _) in DEMO_ACCOUNTS.items())
            + "Change or disable them on the Admin page before real use."
        )
    elif accounts.count() == 0:
        typer.echo(
            "No accounts yet. In another terminal, create the first administrator:\n"
            "    artmatch create-admin --username admin\n"
            "then log in at the URL above and create accounts for registrars, "
            "investigators and analysts on the Admin page."
        )
    else:
        typer.echo("Log in with an existing account at the URL above.")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command("create-admin")
def create_admin(
    ctx: typer.Context,
    username: Annotated[str, typer.Option(prompt=True, help="User name of the admin.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="ARTMATCH_ADMIN_PASSWORD",
            help="At least 10 characters; prompted for when not given.",
        ),
    ],
) -> None:
    """Create an administrator account (the first one must be created this way)."""
    from pydantic import ValidationError

    from kernel.enums import Role
    from kernel.errors import ArtmatchError
    from service.schemas import AccountCreate
    from service.security import hash_password

    try:
        body = AccountCreate(username=username, password=password, role=Role.ADMIN)
        _accounts(settings_of(ctx)).create_account(
            username=body.username,
            password_hash=hash_password(body.password),
            role=Role.ADMIN,
            institution=None,
        )
    except ValidationError as exc:
        typer.echo(f"error: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    except ArtmatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Administrator {username!r} created.")


@app.command("create-token")
def create_token(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Account the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "script",
    days: Annotated[int | None, typer.Option(help="Expires after this many days.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the token to this file instead of stdout.")
    ] = None,
) -> None:
    """Print a new API token for an account (send it as 'Authorization: Bearer <token>')."""
    import datetime as dt

    from service.security import new_token

    if out is not None:
        output_file(out, option="--out")
    accounts = _accounts(settings_of(ctx))
    account = accounts.by_username(username)
    if account is None:
        typer.echo(f"error: no account {username!r}", err=True)
        raise typer.Exit(1)
    token, digest = new_token()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None
    token_id = accounts.add_token(
        account_id=account.id, name=name, token_sha256=digest, expires_at=expires
    )
    from cli.audit import cli_actor
    from storage.catalogue.audit import AuditLog

    AuditLog(accounts.engine).append(
        actor=cli_actor(),
        action="token_create",
        subject=f"account {username}",
        details={"token_id": token_id, "name": name, "for": username, "via": "cli"},
    )
    if out:
        try:
            # Made private before the token is written: never readable by others, even briefly.
            out.touch(mode=0o600)
            out.chmod(0o600)
            out.write_text(token + "\n", encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"--out {out}: cannot write ({exc.strerror or exc})") from None
        typer.echo(f"token for {username} written to {out}")
    else:
        typer.echo(token)
