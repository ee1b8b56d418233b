"""Local features outside the database: ``local_features.data`` becomes nullable and rows gain
``blob_key`` and ``size``, naming the blob (`storage.features`) that holds the bytes.

The rows already stored keep their bytes in ``data`` and stay readable (the catalogue reads
``data`` while ``blob_key`` is NULL); `artmatch db move-features` moves them to the blob store,
which a migration cannot reach. SQLite changes the nullability by copying the table, which
drops the index-version triggers of 0006 on it: they are made again here.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_EVENTS = ("INSERT", "UPDATE", "DELETE")
# As 0006 creates them, for ``local_features`` only.
_BUMP = "UPDATE index_state SET version = version + 1, updated_at = CURRENT_TIMESTAMP"


def _sqlite_triggers() -> None:
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS local_features_{event.lower()}_bump_index_state")
        op.execute(
            f"CREATE TRIGGER local_features_{event.lower()}_bump_index_state "
            f"AFTER {event} ON local_features FOR EACH ROW "
            f"BEGIN {_BUMP} WHERE name = 'photos'; END"
        )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("local_features") as batch:
        batch.add_column(sa.Column("blob_key", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("size", sa.Integer(), nullable=True))
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)
    if sqlite:
        _sqlite_triggers()


def downgrade() -> None:
    # Rows moved to the blob store have no bytes here: moving back is not supported, so a
    # downgrade refuses rather than leave rows without features.
    bind = op.get_bind()
    moved = bind.execute(sa.text("SELECT COUNT(*) FROM local_features WHERE data IS NULL"))
    if moved.scalar():
        raise RuntimeError("local features live in the blob store; cannot downgrade below 0011")
    with op.batch_alter_table("local_features") as batch:
        batch.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("size")
        batch.drop_column("blob_key")
    if bind.dialect.name == "sqlite":
        _sqlite_triggers()
