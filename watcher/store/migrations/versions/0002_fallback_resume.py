"""Resume a capped fallback feed: where it stopped and the watermark it will reach.

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
    with op.batch_alter_table("watch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resume_offset", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resume_mark", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watch", schema=None) as batch_op:
        batch_op.drop_column("resume_mark")
        batch_op.drop_column("resume_offset")
