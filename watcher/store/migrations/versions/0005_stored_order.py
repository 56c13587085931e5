"""The documented-only strategy's memory: each watch's stored ``newest`` order (an item's
``publishedAt``, handle, whether it is listed in the scope, whether it is out of scope but
listed) and what was learned per scope (does ``updatedAt`` move on metrics, the largest
indexing lag seen); where a baseline read of the order goes on.

Revision ID: 0005_stored_order
Revises: 0004_digest_parts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_stored_order"
down_revision = "0004_digest_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("item_seen", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handle", sa.String(), nullable=True))
        batch_op.add_column(
            sa.Column("listed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("outside", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("watch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resume_order", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("moves", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("max_lag_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watch", schema=None) as batch_op:
        batch_op.drop_column("max_lag_s")
        batch_op.drop_column("moves")
        batch_op.drop_column("resume_order")
    with op.batch_alter_table("item_seen", schema=None) as batch_op:
        batch_op.drop_column("outside")
        batch_op.drop_column("listed")
        batch_op.drop_column("handle")
        batch_op.drop_column("published_at")
