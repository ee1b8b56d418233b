"""Alembic migrations: SQLite and PostgreSQL both go from empty to head, the models and the
migrations agree, and a database that is not at head is refused with the command to run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from kernel.errors import ConfigError
from kernel.schemas import ObjectCreate
from storage.catalogue import create_catalogue
from storage.migrate import (
    BASELINE_REVISION,
    UPGRADE_COMMAND,
    alembic_config,
    current_revision,
    head_revision,
    pending_changes,
    upgrade,
)
from storage.migrations import target_metadata
from tests.utils.servers import find_postgres, postgres_schema


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalogue.sqlite3'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema(find_postgres()) as url:
        yield url


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_new_sqlite_file_is_migrated_to_head_on_open(tmp_path: Path) -> None:
    catalogue = create_catalogue(_sqlite(tmp_path))
    try:
        assert current_revision(catalogue.engine) == head_revision()
        catalogue.upsert_object(ObjectCreate(object_id="a", institution="m"))
    finally:
        catalogue.close()
    assert _tables(_sqlite(tmp_path)) == set(target_metadata().tables) | {"alembic_version"}


def test_models_and_migrations_agree_on_sqlite(tmp_path: Path) -> None:
    # What `alembic check` does: a database at head has nothing left to autogenerate.
    catalogue = create_catalogue(_sqlite(tmp_path))
    try:
        assert pending_changes(catalogue.engine) == []
    finally:
        catalogue.close()


def test_sqlite_at_an_old_revision_is_refused_until_upgraded(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    raw = create_catalogue(url, check_schema=False)
    with raw.engine.connect() as conn:
        command.upgrade(alembic_config(connection=conn), BASELINE_REVISION)
        conn.commit()
    raw.close()
    with pytest.raises(ConfigError, match=UPGRADE_COMMAND) as info:
        create_catalogue(url)
    assert f"revision {BASELINE_REVISION}" in str(info.value)

    result = CliRunner().invoke(_app(), ["--home", str(tmp_path), "db", "current"])
    assert result.exit_code == 1 and UPGRADE_COMMAND in result.output
    result = CliRunner().invoke(_app(), ["--home", str(tmp_path), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"upgraded from {BASELINE_REVISION} to {head_revision()}" in result.output
    create_catalogue(url).close()


def _app():  # type: ignore[no-untyped-def]
    from cli.main import app

    return app


def test_db_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTMATCH_STORAGE__DATABASE_URL", _sqlite(tmp_path))
    from kernel.settings import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(_app(), ["db", "current"])
        assert result.exit_code == 1 and "empty" in result.output
        result = runner.invoke(_app(), ["db", "upgrade"])
        assert (
            result.exit_code == 0 and f"upgraded from empty to {head_revision()}" in result.output
        )
        result = runner.invoke(_app(), ["db", "upgrade"])
        assert result.exit_code == 0 and "already at revision" in result.output
        result = runner.invoke(_app(), ["db", "current"])
        assert result.exit_code == 0 and f"{head_revision()} (head)" in result.output
    finally:
        get_settings.cache_clear()


def _pre_migration_database(url: str, like: str):  # type: ignore[no-untyped-def]
    """A database as the pre-migration code's ``create_all`` left it: the tables of revision
    ``like`` (0001 was written to match them; 0002 adds the service's), and no revision."""
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), like)
        conn.execute(text("DROP TABLE alembic_version"))
    return engine


def test_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    # The pre-migration code made its tables with create_all; their rows must survive.
    url = _sqlite(tmp_path)
    engine = _pre_migration_database(url, "0001")
    assert _tables(url) == set(_BASELINE_TABLES)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO institutions (name, created_at) VALUES ('m', '2024-01-01')"))
    engine.dispose()
    with pytest.raises(ConfigError, match=UPGRADE_COMMAND):
        create_catalogue(url)
    raw = create_catalogue(url, check_schema=False)
    assert upgrade(raw.engine) == (None, head_revision())
    raw.close()
    catalogue = create_catalogue(url)
    try:
        record, created = catalogue.upsert_object(ObjectCreate(object_id="a", institution="m"))
        assert record.institution == "m"
    finally:
        catalogue.close()


def test_database_from_before_migrations_with_service_tables_is_adopted(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    _pre_migration_database(url, "0002").dispose()
    raw = create_catalogue(url, check_schema=False)
    assert upgrade(raw.engine) == (None, head_revision())
    raw.close()
    create_catalogue(url).close()


_BASELINE_TABLES = (
    "institutions",
    "objects",
    "status_events",
    "photos",
    "embeddings",
    "local_features",
    "listing_checks",
)


def test_unknown_revision_is_refused(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    create_catalogue(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="does not know"):
        create_catalogue(url)


def test_sqlite_downgrades_to_empty(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    create_catalogue(url).close()
    engine = create_engine(url)
    with engine.connect() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
        conn.commit()
    engine.dispose()
    assert _tables(url) == {"alembic_version"}


@pytest.mark.integration
def test_empty_postgres_migrates_to_head_and_matches_the_models(pg_url: str) -> None:
    raw = create_catalogue(pg_url, check_schema=False)
    try:
        assert upgrade(raw.engine) == (None, head_revision())
        assert pending_changes(raw.engine) == []
        with raw.engine.connect() as conn:
            types = set(
                conn.execute(
                    text(
                        "SELECT t.typname FROM pg_type t JOIN pg_namespace n "
                        "ON n.oid = t.typnamespace WHERE n.nspname = current_schema() "
                        "AND t.typtype = 'e'"
                    )
                ).scalars()
            )
        assert "object_status" in types
        # Down and up again: the enum types go with their tables and come back.
        with raw.engine.connect() as conn:
            command.downgrade(alembic_config(connection=conn), "base")
            conn.commit()
        assert _tables(pg_url) == {"alembic_version"}
        upgrade(raw.engine)
    finally:
        raw.close()
    catalogue = create_catalogue(pg_url)
    try:
        catalogue.upsert_object(ObjectCreate(object_id="a", institution="m"))
    finally:
        catalogue.close()


@pytest.mark.integration
def test_unmigrated_postgres_is_refused_with_the_command_to_run(pg_url: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_catalogue(pg_url)
    message = str(info.value)
    assert UPGRADE_COMMAND in message and "no schema yet" in message
    assert "***" in message  # the password is not printed
