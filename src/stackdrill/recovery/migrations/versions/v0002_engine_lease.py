"""The engine lease: one row that says which engine may act on this inventory.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lease = op.create_table(
        "engine_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("acquired_at", sa.Float, nullable=True),
    )
    # the row exists from the start, so taking the lease is one conditional UPDATE
    op.bulk_insert(lease, [{"name": "recovery", "holder": None, "expires_at": None,
                            "acquired_at": None}])


def downgrade() -> None:
    op.drop_table("engine_lease")
