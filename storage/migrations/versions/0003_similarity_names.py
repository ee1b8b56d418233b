"""One name per quantity: the cosine of global descriptors is a *similarity* everywhere, so
``search_log.top_score`` becomes ``top_similarity`` and ``listing_checks.best_score`` becomes
``best_similarity`` (values unchanged).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_RENAMES = (
    ("search_log", "top_score", "top_similarity"),
    ("listing_checks", "best_score", "best_similarity"),
)


def upgrade() -> None:
    # Batch mode: SQLite renames by copying the table, PostgreSQL with ALTER TABLE.
    for table, old, new in _RENAMES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(old, new_column_name=new)


def downgrade() -> None:
    for table, old, new in _RENAMES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(new, new_column_name=old)
