"""The language each account reads the pages and reports in (``accounts.language``, a
`kernel.i18n.LOCALES` identifier); empty for every account so far, which then follows its
browser's ``Accept-Language``.

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("language", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("language")
