"""Small key/value facts: what was learned of the API's capabilities, the config version
already alerted as rejected.

Each is a short text under a key that its owner names; nothing here interprets them.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import col

from watcher.store.database import Database
from watcher.store.tables import MetaRow


class Meta:
    """Key/value facts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> str | None:
        with self._db.read() as s:
            row = s.get(MetaRow, key)
            return row.value if row else None

    def set(self, key: str, value: str) -> None:
        with self._db.write() as s:
            stmt = self._db.insert(MetaRow).values(key=key, value=value)
            s.exec(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))

    def delete(self, key: str) -> None:
        with self._db.write() as s:
            s.exec(delete(MetaRow).where(col(MetaRow.key) == key))
