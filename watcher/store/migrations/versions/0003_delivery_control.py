"""Delivery control: silences, digest schedules, held/silenced outbox rows, milestones.

Revision ID: 0003_delivery_control
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_delivery_control"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "silence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watch", sa.String(), nullable=True),
        sa.Column("handle", sa.String(), nullable=True),
        sa.Column("shop", sa.String(), nullable=True),
        sa.Column("item", sa.String(), nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summarized_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("silence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_silence_ends_at"), ["ends_at"], unique=False)
    op.create_table(
        "digest_mark",
        sa.Column("notifier", sa.String(), nullable=False),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("notifier"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("silence_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("release", sa.String(), nullable=True))
    with op.batch_alter_table("item_seen", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("milestone", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("item_seen", schema=None) as batch_op:
        batch_op.drop_column("milestone")
        batch_op.drop_column("started_at")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("release")
        batch_op.drop_column("silence_id")
    op.drop_table("digest_mark")
    with op.batch_alter_table("silence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_silence_ends_at"))
    op.drop_table("silence")
