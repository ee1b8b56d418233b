"""The audit chain (`storage.catalogue.audit`): an append-only, hash-chained log of searches,
evidence fetches, account changes and catalogue changes. Searches logged before it are
chained here, oldest first, so an upgraded database verifies.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
        sa.UniqueConstraint("prev_hash"),
        sa.UniqueConstraint("entry_hash"),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    _chain_earlier_searches()


def _chain_earlier_searches() -> None:
    # The hashing is the application's own, so a chain started here verifies like any other.
    from storage.catalogue.audit import GENESIS, canonical_json, entry_hash

    bind = op.get_bind()
    search_log = sa.table(
        "search_log",
        sa.column("id", sa.Integer()),
        sa.column("account_id", sa.Integer()),
        sa.column("username", sa.String()),
        # Typed, so SQLite's stored text comes back as a datetime.
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("case_reference", sa.String()),
        sa.column("query_sha256", sa.String()),
        sa.column("filters_json", sa.Text()),
        sa.column("matches", sa.Integer()),
        sa.column("top_object_id", sa.String()),
        sa.column("top_similarity", sa.Float()),
    )
    rows = bind.execute(sa.select(search_log).order_by(search_log.c.id)).mappings().all()
    table = sa.table(
        "audit_log",
        *(
            sa.column(name)
            for name in (
                "seq",
                "created_at",
                "actor",
                "action",
                "subject",
                "details_json",
                "prev_hash",
                "entry_hash",
            )
        ),
    )
    prev = GENESIS
    for seq, r in enumerate(rows, start=1):
        created = r["created_at"]
        details = json.loads(
            canonical_json(
                {
                    "search_id": r["id"],
                    "account_id": r["account_id"],
                    "case_reference": r["case_reference"],
                    "query_sha256": r["query_sha256"],
                    "filters": json.loads(r["filters_json"] or "{}"),
                    "matches": r["matches"],
                    "top_object_id": r["top_object_id"],
                    "top_similarity": r["top_similarity"],
                    "via": "before the chain",
                }
            )
        )
        digest = entry_hash(
            seq=seq,
            created_at=created,
            actor=r["username"],
            action="search",
            subject=f"search {r['id']}",
            details=details,
            prev_hash=prev,
        )
        bind.execute(
            table.insert().values(
                seq=seq,
                created_at=created,
                actor=r["username"],
                action="search",
                subject=f"search {r['id']}",
                details_json=canonical_json(details),
                prev_hash=prev,
                entry_hash=digest,
            )
        )
        prev = digest


def downgrade() -> None:
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_created_at", table_name="audit_log")
    op.drop_table("audit_log")
