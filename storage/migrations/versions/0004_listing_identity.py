"""A listing is (source, listing_id, photo sha256), no longer listing_id alone, and batch jobs
carry a lease (``claimed_by``, ``heartbeat_at``) so that one process never fails a job another
still runs.

``listing_checks`` is rebuilt without the unique constraint on ``listing_id`` (unnamed in 0001,
so copied rather than altered, the same on SQLite and PostgreSQL). Checks made before this
revision have no known manifest: they keep source ``legacy``, so a listing is checked once more
the next time a manifest names it, and their reports stay readable.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LEGACY_SOURCE = "legacy"

_COLUMNS = (
    "listing_id",
    "image",
    "image_sha256",
    "title",
    "url",
    "seller",
    "price",
    "listed_on",
    "is_hit",
    "error",
    "best_object_id",
    "best_similarity",
    "matches_json",
    "model_version",
    "checked_at",
)


def _listing_checks(name: str, *, with_source: bool) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        *([sa.Column("source", sa.String(length=1000), nullable=False)] if with_source else []),
        sa.Column("listing_id", sa.String(length=300), nullable=False),
        sa.Column("image", sa.String(length=1000), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=1000), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("seller", sa.String(length=500), nullable=True),
        sa.Column("price", sa.String(length=100), nullable=True),
        sa.Column("listed_on", sa.String(length=100), nullable=True),
        sa.Column("is_hit", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("best_object_id", sa.String(length=200), nullable=True),
        sa.Column("best_similarity", sa.Float(), nullable=True),
        sa.Column("matches_json", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column(
            "checked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=f"{name}_pkey"),
        *([] if with_source else [sa.UniqueConstraint("listing_id")]),
    )


def upgrade() -> None:
    columns = ", ".join(_COLUMNS)
    _listing_checks("listing_checks_new", with_source=True)
    op.execute(
        f"INSERT INTO listing_checks_new (id, source, {columns}) "
        f"SELECT id, '{LEGACY_SOURCE}', {columns} FROM listing_checks"
    )
    op.drop_table("listing_checks")
    op.rename_table("listing_checks_new", "listing_checks")
    if op.get_bind().dialect.name == "postgresql":
        # The names PostgreSQL would have given the table made under its own name.
        op.execute(
            "ALTER TABLE listing_checks "
            "RENAME CONSTRAINT listing_checks_new_pkey TO listing_checks_pkey"
        )
        op.execute("ALTER SEQUENCE listing_checks_new_id_seq RENAME TO listing_checks_id_seq")
        # Copied ids: the new sequence starts after them.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('listing_checks', 'id'), "
            "COALESCE((SELECT MAX(id) FROM listing_checks), 0) + 1, false)"
        )
    op.create_index("ix_listing_checks_identity", "listing_checks", ["source", "listing_id"])

    with op.batch_alter_table("batch_jobs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batch_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("claimed_by")

    # Only one check per listing_id fits the old table: the newest is kept.
    columns = ", ".join(_COLUMNS)
    _listing_checks("listing_checks_old", with_source=False)
    op.execute(
        f"INSERT INTO listing_checks_old (id, {columns}) SELECT id, {columns} FROM listing_checks "
        "WHERE id IN (SELECT MAX(id) FROM listing_checks GROUP BY listing_id)"
    )
    op.drop_index("ix_listing_checks_identity", table_name="listing_checks")
    op.drop_table("listing_checks")
    op.rename_table("listing_checks_old", "listing_checks")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE listing_checks "
            "RENAME CONSTRAINT listing_checks_old_pkey TO listing_checks_pkey"
        )
        op.execute("ALTER SEQUENCE listing_checks_old_id_seq RENAME TO listing_checks_id_seq")
