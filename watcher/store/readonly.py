"""Opening a SQLite database for reading only (``watcher status``, ``watcher events``).

A normal open sets ``journal_mode=WAL`` and may create ``-wal``/``-shm`` files: both need
write access, so a database in a read-only folder (a mounted backup, a volume shared
read-only with a sidecar) could not even be read. These connections use ``mode=ro``; on
read-only media, where SQLite cannot create the ``-shm`` a WAL database needs, they fall
back to ``immutable=1`` (nothing can be writing it there).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine
from sqlmodel import create_engine


def _connect(path: Path) -> sqlite3.Connection:
    base = f"file:{quote(str(path.absolute()))}?mode=ro"
    for uri in (base, base + "&immutable=1"):
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            continue
        conn.execute("PRAGMA busy_timeout=10000")
        return conn
    raise sqlite3.OperationalError(f"unable to open database file {path} for reading")


def read_only_engine(path: Path) -> Engine:
    """An engine whose every connection reads ``path`` and can never write it."""
    return create_engine("sqlite://", creator=lambda: _connect(path))
