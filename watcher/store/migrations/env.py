"""Alembic environment: runs on the connection ``store`` hands over, in batch mode."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import watcher.store.tables  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by the alembic CLI
    raise RuntimeError("run migrations through watcher.store.migrate()")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
