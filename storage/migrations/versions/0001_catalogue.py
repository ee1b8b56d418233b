"""Catalogue tables: institutions, objects, status history, photos, vectors, local features,
listing checks (the tables `Base.metadata.create_all` made before there were migrations).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# One named type shared by two tables. On PostgreSQL it is a CREATE TYPE made once, before the
# tables (create_type=False below stops each create_table from making it again); on SQLite it
# is a VARCHAR.
object_status = sa.Enum(
    "in_collection", "on_loan", "stolen", "missing", "recovered", name="object_status"
)


def _status_column() -> sa.Column:
    return sa.Column(
        "status",
        sa.Enum(
            *object_status.enums,
            name="object_status",
            create_type=False,  # type: ignore[call-arg]  # forwarded to PostgreSQL's ENUM
        ),
        nullable=False,
    )


def upgrade() -> None:
    object_status.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "institutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("inventory_number", sa.String(length=200), nullable=True),
        sa.Column("object_type", sa.String(length=500), nullable=True),
        sa.Column("materials_techniques", sa.String(length=500), nullable=True),
        sa.Column("measurements", sa.String(length=500), nullable=True),
        sa.Column("inscriptions_markings", sa.Text(), nullable=True),
        sa.Column("distinguishing_features", sa.Text(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("date_period", sa.String(length=500), nullable=True),
        sa.Column("maker", sa.String(length=500), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        _status_column(),
        sa.Column("loss_date", sa.Date(), nullable=True),
        sa.Column("loss_reference", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_objects_institution_id", "objects", ["institution_id"])
    op.create_index("ix_objects_object_id", "objects", ["object_id"], unique=True)
    op.create_index("ix_objects_object_type", "objects", ["object_type"])
    op.create_index("ix_objects_status", "objects", ["status"])

    op.create_table(
        "status_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_pk", sa.Integer(), nullable=False),
        _status_column(),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("reference", sa.String(length=500), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["object_pk"], ["objects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_status_events_object_pk", "status_events", ["object_pk"])

    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_pk", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=300), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=300), nullable=False),
        sa.Column("view", sa.String(length=100), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["object_pk"], ["objects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_index("ix_photos_object_pk", "photos", ["object_pk"])

    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("photo_id", "model", "model_version"),
    )
    op.create_index("ix_embeddings_photo_id", "embeddings", ["photo_id"])

    op.create_table(
        "local_features",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("photo_id", "method"),
    )
    op.create_index("ix_local_features_photo_id", "local_features", ["photo_id"])

    op.create_table(
        "listing_checks",
        sa.Column("id", sa.Integer(), nullable=False),
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
        sa.Column("best_score", sa.Float(), nullable=True),
        sa.Column("matches_json", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column(
            "checked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("listing_id"),
    )


def downgrade() -> None:
    for table in (
        "listing_checks",
        "local_features",
        "embeddings",
        "photos",
        "status_events",
        "objects",
        "institutions",
    ):
        op.drop_table(table)  # drops the table's indexes with it
    object_status.drop(op.get_bind(), checkfirst=True)
