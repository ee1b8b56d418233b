"""The catalogue's index version (`storage.catalogue.index_state`): table ``index_state`` with
one row, ``photos``, and triggers that bump it in the same transaction as every change to
``embeddings`` or ``local_features``, so every process on the catalogue sees another's photo
changes, whatever path made them (cascaded deletes too).

SQLite triggers are per row; PostgreSQL's per statement (one UPDATE per batch insert).
A later migration that rebuilds ``embeddings`` or ``local_features`` through SQLite batch mode
(copy and rename) drops their triggers and must create them again (`_create_triggers`).

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("embeddings", "local_features")
_EVENTS = ("INSERT", "UPDATE", "DELETE")
_BUMP = "UPDATE index_state SET version = version + 1, updated_at = CURRENT_TIMESTAMP"


def _create_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION artmatch_bump_index_state() RETURNS trigger AS $$ "
            f"BEGIN {_BUMP} WHERE name = 'photos'; RETURN NULL; END; $$ LANGUAGE plpgsql"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_bump_index_state "
                f"AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION artmatch_bump_index_state()"
            )
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_bump_index_state "
                f"AFTER {event} ON {table} FOR EACH ROW "
                f"BEGIN {_BUMP} WHERE name = 'photos'; END"
            )


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_index_state ON {table}")
        op.execute("DROP FUNCTION IF EXISTS artmatch_bump_index_state()")
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{event.lower()}_bump_index_state")


def upgrade() -> None:
    op.create_table(
        "index_state",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO index_state (name, version, updated_at) "
        "VALUES ('photos', 1, CURRENT_TIMESTAMP)"
    )
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_table("index_state")
