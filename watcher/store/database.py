"""The database connection: engine, transactions, migrations. The one write path.

SQLite is tuned for a long-running daemon (WAL, ``busy_timeout``, ``synchronous=NORMAL``,
foreign keys on) and written by one writer at a time: every write of every aggregate goes
through :meth:`Database.write`, one transaction under one lock, so a poll's items, events,
outbox rows, poll record and credits commit together or not at all. Driver errors become
:class:`StoreError` here, said in words. Nothing outside the store package knows which
database is behind it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.base import Executable
from sqlmodel import Session, create_engine

from watcher.errors import StoreError
from watcher.store.bulk import sqlite_insert, sqlite_rows
from watcher.store.failures import in_words
from watcher.store.readonly import read_only_engine
from watcher.store.urls import engine_url, is_postgres

SCHEMA_HEAD = "0006_leases"
"""The latest migration's revision; ``tests/test_store.py`` checks it against alembic."""

MIGRATION_LOCK = 0x77617463686D6967  # "watchmig": the advisory lock key of migrations


def application_name() -> str:
    """How a watcher process names its PostgreSQL connections (``pg_stat_activity``), so
    ``watcher db copy`` sees another watcher at work on a database."""
    return f"watcher/{os.getpid()}"


Insert = Callable[..., Any]
"""The dialect's ``insert`` (it has ``on_conflict_do_nothing`` / ``_do_update``)."""


def _existing_sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = Path(url.removeprefix(prefix).split("?", 1)[0])
    return path if path.is_file() else None


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA busy_timeout=10000",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()


def _version(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return str(row[0]) if row else None


class Database:
    """One database: its engine, its transactions and its schema. Thread-safe."""

    def __init__(self, url: str, *, migrate: bool = True, read_only: bool = False) -> None:
        """Open (and migrate) the database at ``url``.

        ``read_only`` (for commands that only read): an existing SQLite file is opened
        with ``mode=ro``, without the WAL pragma or a migration, so it works in a
        read-only folder; a PostgreSQL database in read-only transactions, unmigrated.
        Every write then fails.
        """
        self.url = url
        self._write_lock = threading.Lock()
        ro_path = _existing_sqlite_file(url) if read_only else None
        try:
            if ro_path is not None:
                self.engine = read_only_engine(ro_path)
                migrate = False
            elif url.startswith("sqlite"):
                self.engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 10}
                )
                _install_sqlite_pragmas(self.engine)
            else:
                # read_only: PostgreSQL refuses every write of the session, and nothing migrates.
                # connect_timeout: an unreachable server fails a command in seconds, not minutes
                options: dict[str, object] = {}
                if is_postgres(url):
                    options = {"application_name": application_name(), "connect_timeout": 10}
                if read_only and is_postgres(url):
                    options["options"] = "-c default_transaction_read_only=on"
                self.engine = create_engine(
                    engine_url(url), pool_pre_ping=True, connect_args=options
                )
                migrate = migrate and not read_only
            self.is_sqlite = self.engine.dialect.name == "sqlite"
            self.insert: Insert = postgresql.insert if not self.is_sqlite else sqlite.insert
            if migrate:
                self.migrate()
        except (SQLAlchemyError, ImportError) as exc:  # ImportError: the driver is missing
            self._dispose()
            raise StoreError(f"cannot open the state database: {in_words(exc)}") from exc
        except StoreError:
            self._dispose()
            raise

    def _dispose(self) -> None:
        """Close the pool of a database that failed to open (no connection left behind)."""
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.dispose()

    def __repr__(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> bool:
        """Bring the schema to the latest version (alembic, batch mode for SQLite); True
        if this call changed it.

        A database already at ``SCHEMA_HEAD`` skips alembic (and its import time) entirely.
        On PostgreSQL the upgrade runs under a transaction-scoped advisory lock, so replicas
        starting together migrate once: the others wait for it, then find the schema at
        the head (alembic reads the version inside the lock) and change nothing. DDL is
        transactional there, so a failed upgrade leaves the schema as it was.
        """
        if self.schema_version() == SCHEMA_HEAD:
            return False
        from alembic import command  # noqa: PLC0415  # only needed when the schema moves
        from alembic.config import Config  # noqa: PLC0415
        from alembic.util import CommandError  # noqa: PLC0415

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("watcher.store") / "migrations"))
        with self._write_lock, self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
                if _version(connection) == SCHEMA_HEAD:
                    return False  # another process migrated while this one waited
            cfg.attributes["connection"] = connection
            try:
                command.upgrade(cfg, "head")
            except CommandError as exc:  # e.g. a database written by a newer watcher
                raise StoreError(f"cannot migrate the state database: {in_words(exc)}") from exc
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot migrate the state database: {in_words(exc)}") from exc
        return True

    def schema_version(self) -> str | None:
        """The alembic revision the database is at, or None for a new database."""
        try:
            with self.engine.connect() as connection:
                return _version(connection)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the state database: {in_words(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction (one writer at a time): committed when the block ends,
        rolled back entirely if it raises."""
        with self._write_lock:
            try:
                with Session(self.engine) as session, session.begin():
                    yield session
            except SQLAlchemyError as exc:
                raise StoreError(f"state database write failed: {in_words(exc)}") from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; driver errors become :class:`StoreError`."""
        try:
            with Session(self.engine) as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"state database read failed: {in_words(exc)}") from exc

    def insert_many(
        self,
        s: Session,
        rows: Sequence[Mapping[str, object]],
        statement: Executable,
        sqlite_conflict: str = "",
    ) -> None:
        """Insert many rows with one statement. On SQLite (the hot path of every poll) the
        driver's own executemany, several times faster than SQLAlchemy binding each row;
        elsewhere SQLAlchemy's ``statement``. ``sqlite_conflict`` mirrors its conflict rule."""
        if not rows:
            return
        if self.is_sqlite:
            table = statement.table.name  # type: ignore[attr-defined]
            sql = sqlite_insert(table, list(rows[0]), sqlite_conflict)
            s.connection().exec_driver_sql(sql, sqlite_rows(rows))
            return
        s.connection().execute(statement, list(rows))
