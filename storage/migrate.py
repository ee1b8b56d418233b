"""Schema migrations of the catalogue database: where it stands, bringing it to head.

The migrations live in `storage.migrations` (shipped with the package, so ``pip install``
users have them). `ensure_schema` is what opening a catalogue calls: a brand-new, empty SQLite
database is upgraded on the spot (the embedded default must just work); any other database that
is not at head is refused with a `ConfigError` naming the command to run, because migrating a
shared server database is a deliberate step, not a side effect of starting a replica.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from kernel.errors import ConfigError, StorageError

__all__ = [
    "BASELINE_REVISION",
    "MIGRATIONS_DIR",
    "UPGRADE_COMMAND",
    "alembic_config",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "pending_changes",
    "upgrade",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "artmatch db upgrade"
#: The revision whose tables `Base.metadata.create_all` made before there were migrations; a
#: database with those tables and no revision is adopted at it by `upgrade`.
BASELINE_REVISION = "0001"


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for our migrations, without an ini file.

    With ``connection`` the migrations run on it (and its engine's connect hooks, e.g. the
    SQLite pragmas); with ``url`` on a fresh engine; with neither on the settings' database.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "storage/migrations has no revisions"
    return head


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty or pre-migration database."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot read the catalogue database {_where(engine)}: {exc}") from exc


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to ``revision``; returns (revision before, revision after).

    A database made by the pre-migration code (catalogue tables, no revision) is first
    stamped at `BASELINE_REVISION`, so its data is kept and only later revisions run.
    """
    before = current_revision(engine)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # Batch migrations copy tables; foreign keys would cascade on the copy's drop.
                # The pragma only takes effect outside a transaction, hence before any work.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            tables = _table_names(conn) if before is None else set()
            if "objects" in tables:
                # create_all also made the web service's tables where the service had run.
                baseline = "0002" if "accounts" in tables else BASELINE_REVISION
                log.warning(
                    "catalogue database %s predates migrations: adopting it at revision %s",
                    _where(engine),
                    baseline,
                )
                command.stamp(alembic_config(connection=conn), baseline)
            command.upgrade(alembic_config(connection=conn), revision)
            conn.commit()
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    except SQLAlchemyError as exc:
        raise StorageError(
            f"migrating the catalogue database {_where(engine)} failed: {exc}"
        ) from exc
    return before, current_revision(engine)


def ensure_schema(engine: Engine, *, upgrade_empty_sqlite: bool = True) -> None:
    """Return if the database is at head; upgrade it if it is a brand-new SQLite one; else
    raise `ConfigError` saying which command to run."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    if current is None and upgrade_empty_sqlite and engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            empty = not _table_names(conn)
        if empty:
            try:
                upgrade(engine)
            except StorageError:
                # Another process may have created the same new file at the same moment.
                if current_revision(engine) != head:
                    raise
            return
    if current is None:
        state = "has no schema yet (or predates migrations)"
    else:
        heads = ScriptDirectory.from_config(alembic_config())
        known = any(s.revision == current for s in heads.walk_revisions())
        state = (
            f"is at revision {current}, head is {head}"
            if known
            else f"is at revision {current}, which this version of artmatch does not know "
            f"(head is {head}): is the code older than the database?"
        )
        if not known:
            raise ConfigError(f"the catalogue database {_where(engine)} {state}")
    raise ConfigError(
        f"the catalogue database {_where(engine)} {state}; run `{UPGRADE_COMMAND}` "
        "(with the same ARTMATCH_STORAGE__DATABASE_URL) before starting artmatch"
    )


def pending_changes(engine: Engine) -> list[object]:
    """Differences between the models and a database at head (what autogenerate would write).

    Empty when the migrations and the models agree; tests call this on a fresh database.
    """
    from storage.migrations import target_metadata

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return list(compare_metadata(ctx, target_metadata()))
