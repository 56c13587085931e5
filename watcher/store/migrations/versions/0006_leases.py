"""Leases shared by replicas: watches, the outbox, and each replica's heartbeat.

Revision ID: 0006_leases
Revises: 0005_stored_order
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_leases"
down_revision = "0005_stored_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lease",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lease_holder"), ["holder"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lease_holder"))
    op.drop_table("lease")
