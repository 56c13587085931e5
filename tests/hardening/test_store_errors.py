"""Issue 15 item 17: a StoreError says what failed in words, never the raw SQL or its
parameters (they may hold private or hostile data)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from watcher.errors import StoreError
from watcher.store import Store


def test_a_file_that_is_not_a_database_is_said_in_words(tmp_path: Path) -> None:
    """Garbage where the database belongs: 'not a watcher database', no SQL."""
    path = tmp_path / "watcher.db"
    path.write_bytes(b"this is not sqlite at all, just text " * 200)
    with pytest.raises(StoreError) as caught:
        Store(f"sqlite:///{path}")
    message = str(caught.value)
    assert "not a watcher database" in message
    assert "[SQL:" not in message
    assert "SELECT" not in message


def test_a_failed_write_names_the_problem_not_the_statement(tmp_path: Path) -> None:
    """A write to a table that vanished: the reason in words, no INSERT, no parameters."""
    path = tmp_path / "watcher.db"
    store = Store(f"sqlite:///{path}")
    try:
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE meta")
        with pytest.raises(StoreError) as caught:
            store.meta.set("outbox.note", "private-value-1234")
    finally:
        store.close()
    message = str(caught.value)
    assert message.startswith("state database write failed: ")
    assert "no watcher schema" in message
    assert "private-value-1234" not in message
    assert "INSERT" not in message
    assert "[parameters:" not in message
