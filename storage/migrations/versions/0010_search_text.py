"""Text search across scripts and diacritics: column ``objects.search_text`` holds the
searched fields folded (`kernel.text.search_text`), written by the ORM on every change, and
filled here for the objects already stored.

The backfill folds with today's `kernel.text`; a later change to the folding needs a
migration that fills the column again the same way.

Revision ID: 0010
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kernel.text import search_text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# As `storage.catalogue.orm.SEARCHED_FIELDS` is today: a migration must not follow later edits.
_FIELDS = ("object_id", "title", "maker", "inscriptions_markings", "description")
_BATCH = 500


def upgrade() -> None:
    op.add_column("objects", sa.Column("search_text", sa.Text(), nullable=True))
    objects = sa.table(
        "objects",
        sa.column("id", sa.Integer),
        sa.column("search_text", sa.Text),
        *(sa.column(f, sa.Text) for f in _FIELDS),
    )
    conn = op.get_bind()
    after = 0
    # In batches by id, so a large catalogue is never held in memory at once.
    while True:
        rows = conn.execute(
            sa.select(objects.c.id, *(objects.c[f] for f in _FIELDS))
            .where(objects.c.id > after)
            .order_by(objects.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            conn.execute(
                objects.update()
                .where(objects.c.id == row[0])
                .values(search_text=search_text(row[1:]))
            )
        after = rows[-1][0]


def downgrade() -> None:
    # Plain ALTER (SQLite 3.35+ and PostgreSQL): batch mode would copy ``objects`` and drop
    # the original, and with foreign keys on that drop cascades to every photo.
    op.execute("ALTER TABLE objects DROP COLUMN search_text")
