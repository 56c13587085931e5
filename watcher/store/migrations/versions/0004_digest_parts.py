"""Digest parts: the parts of a multi-part digest already sent, in their own table.

They were JSON notes in ``meta`` (``outbox.parts.<notifier>.<index>``); a note still
there (a digest cut off by the upgrade) moves over, so the digest resumes where it was.

Revision ID: 0004_digest_parts
Revises: 0003_delivery_control
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004_digest_parts"
down_revision = "0003_delivery_control"
branch_labels = None
depends_on = None

_PREFIX = "outbox.parts."


def upgrade() -> None:
    parts = op.create_table(
        "digest_part",
        sa.Column("notifier", sa.String(), nullable=False),
        sa.Column("url_index", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("deliveries", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("notifier", "url_index", "number"),
    )
    connection = op.get_bind()
    meta = sa.table("meta", sa.column("key", sa.String()), sa.column("value", sa.String()))
    notes = connection.execute(sa.select(meta).where(meta.c.key.startswith(_PREFIX))).all()
    rows: list[dict[str, object]] = []
    for key, value in notes:
        notifier, _, index = str(key).removeprefix(_PREFIX).rpartition(".")
        try:
            note = json.loads(value)
            ids, sent = note["rows"], note["sent"]
            position = int(index)
        except (ValueError, TypeError, KeyError):
            continue  # unreadable: the digest is sent whole, as before
        if not notifier or not isinstance(ids, list) or not isinstance(sent, list):
            continue
        batch = ",".join(str(int(i)) for i in ids)
        rows += [
            {
                "notifier": notifier,
                "url_index": position,
                "number": n,
                "deliveries": batch,
                "fingerprint": str(h),
            }
            for n, h in enumerate(sent)
        ]
    if rows:
        op.bulk_insert(parts, rows)
    connection.execute(sa.delete(meta).where(meta.c.key.startswith(_PREFIX)))


def downgrade() -> None:
    op.drop_table("digest_part")
