"""Alembic migrations of the state database, applied on start (``store.migrate``)."""
