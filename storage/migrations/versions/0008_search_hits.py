"""What a search covered and what came back: tables ``search_hits`` (one row per hit, as
decided) and ``search_coverage`` (one row per search: filters, counts, index, model, matcher
and service versions), written with the search's log row, for match reports and
due-diligence receipts made later (`storage.catalogue.search_log`).

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("inliers", sa.Integer(), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("threshold_on", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["search_id"], ["search_log.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_search_hits_search_id", "search_hits", ["search_id"])
    op.create_table(
        "search_coverage",
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("statuses_json", sa.Text(), nullable=False),
        sa.Column("institutions_json", sa.Text(), nullable=False),
        sa.Column("objects_searched", sa.Integer(), nullable=False),
        sa.Column("photos_searched", sa.Integer(), nullable=False),
        sa.Column("index_version", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("matcher", sa.String(length=200), nullable=False),
        sa.Column("service_version", sa.String(length=50), nullable=False),
        sa.Column("verification", sa.Boolean(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("threshold_on", sa.String(length=20), nullable=False),
        sa.Column("query_width", sa.Integer(), nullable=False),
        sa.Column("query_height", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["search_id"], ["search_log.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("search_id"),
    )


def downgrade() -> None:
    op.drop_table("search_coverage")
    op.drop_index("ix_search_hits_search_id", table_name="search_hits")
    op.drop_table("search_hits")
