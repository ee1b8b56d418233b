"""Alerts, re-checks and sightings (`storage.catalogue.alerts`): the stored features of
checked listing photos, sightings of objects in listings, subscriptions and webhooks, alerts,
case watches and re-check runs. New tables only.

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

subscription_kind = sa.Enum("institution", "object_type", "case", name="subscription_kind")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("institution", sa.String(length=200), nullable=False),
        sa.Column("object_type", sa.String(length=500), nullable=True),
        sa.Column("object_status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("listing_id", sa.String(length=300), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("listing_title", sa.String(length=1000), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("seller", sa.String(length=500), nullable=True),
        sa.Column("price", sa.String(length=100), nullable=True),
        sa.Column("listed_on", sa.String(length=100), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("inliers", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("object_id", "source", "listing_id", "image_sha256"),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"], unique=False)
    op.create_index("ix_alerts_institution", "alerts", ["institution"], unique=False)
    op.create_index("ix_alerts_object_id", "alerts", ["object_id"], unique=False)

    op.create_table(
        "case_watches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "object_id"),
    )
    op.create_index("ix_case_watches_case_id", "case_watches", ["case_id"], unique=False)
    op.create_index("ix_case_watches_object_id", "case_watches", ["object_id"], unique=False)

    op.create_table(
        "listing_features",
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("image_sha256"),
    )
    op.create_table(
        "rechecks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("listings", sa.Integer(), nullable=False),
        sa.Column("without_features", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("new_alerts", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rechecks_object_id", "rechecks", ["object_id"], unique=False)

    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("listing_id", sa.String(length=300), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=1000), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("seller", sa.String(length=500), nullable=True),
        sa.Column("price", sa.String(length=100), nullable=True),
        sa.Column("listed_on", sa.String(length=100), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("object_id", "source", "listing_id", "image_sha256"),
    )
    op.create_index("ix_sightings_image_sha256", "sightings", ["image_sha256"], unique=False)
    op.create_index("ix_sightings_object_id", "sightings", ["object_id"], unique=False)

    op.create_table(
        "alert_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            subscription_kind,
            nullable=False,
        ),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "kind", "value"),
    )
    op.create_index(
        "ix_alert_subscriptions_account_id", "alert_subscriptions", ["account_id"], unique=False
    )

    op.create_table(
        "alert_webhooks",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("alert_webhooks")
    op.drop_index("ix_alert_subscriptions_account_id", table_name="alert_subscriptions")
    op.drop_table("alert_subscriptions")
    op.drop_index("ix_sightings_object_id", table_name="sightings")
    op.drop_index("ix_sightings_image_sha256", table_name="sightings")
    op.drop_table("sightings")
    op.drop_index("ix_rechecks_object_id", table_name="rechecks")
    op.drop_table("rechecks")
    op.drop_table("listing_features")
    op.drop_index("ix_case_watches_object_id", table_name="case_watches")
    op.drop_index("ix_case_watches_case_id", table_name="case_watches")
    op.drop_table("case_watches")
    op.drop_index("ix_alerts_object_id", table_name="alerts")
    op.drop_index("ix_alerts_institution", table_name="alerts")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_table("alerts")
    subscription_kind.drop(op.get_bind(), checkfirst=True)
