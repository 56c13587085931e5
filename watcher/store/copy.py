"""Copying a whole installation's state from one database to another (``watcher db copy``).

Every table of the schema is copied row for row, ids included, so the copy goes on where
the original stopped: each watch's memory and resume point, every event with its outbox
rows in whatever state they were (sent, pending and backing off, dead, held, silenced),
silences, digest marks, the credit ledger, ops episodes and meta facts. Rows go through
the columns' own types, so times and JSON convert between the engines (SQLite keeps text,
PostgreSQL ``timestamptz`` and ``json``); a JSON column's SQL NULL stays NULL.

The source is read in one snapshot (one read transaction); the target is written in ONE
transaction, so a failed copy leaves it empty, and PostgreSQL's id sequences are moved
past the copied ids. The target must be at the schema's head and hold no state. A
daemon on either side is refused: on SQLite the caller holds the daemon's file lock
(:mod:`watcher.dblock`); on PostgreSQL no other watcher process may be connected
(every watcher connection names itself, see :func:`application_name`) and no lease may
be live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import JSON, Connection, Integer, Table, bindparam, func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel

import watcher.store.tables  # noqa: F401  (registers every table on the metadata)
from watcher.errors import StoreError
from watcher.store.database import SCHEMA_HEAD, application_name
from watcher.store.failures import in_words
from watcher.store.state import Store

_BATCH = 1000
_VERSION_TABLE = "alembic_version"


class CopyRefused(StoreError):
    """The copy would lose or mix state: a daemon runs, or the target holds state."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    """Rows copied per table, in the order they were copied."""

    tables: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.tables)


def _tables() -> list[Table]:
    """The schema's tables, parents before children (foreign keys)."""
    return [t for t in SQLModel.metadata.sorted_tables if t.name != _VERSION_TABLE]


def _counts(connection: Connection, tables: list[Table]) -> dict[str, int]:
    return {
        t.name: int(connection.execute(select(func.count()).select_from(t)).scalar_one())
        for t in tables
    }


def _other_watchers(connection: Connection) -> list[str]:
    """Other watcher processes connected to this PostgreSQL database, described."""
    rows = connection.execute(
        text(
            "SELECT application_name, coalesce(host(client_addr), 'local') FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name LIKE 'watcher/%' AND application_name <> :mine"
        ),
        {"mine": application_name()},
    ).all()
    return sorted({f"{name} from {addr}" for name, addr in rows})


def _live_leases(connection: Connection) -> int:
    """Leases not yet expired (replicas at work), where the schema has leases."""
    if not inspect(connection).has_table("lease"):
        return 0
    query = text("SELECT count(*) FROM lease WHERE expires_at > CURRENT_TIMESTAMP")
    return int(connection.execute(query).scalar_one())


def _refuse_running(connection: Connection, side: str, shown: str) -> None:
    if connection.dialect.name != "postgresql":
        return  # SQLite: the caller holds the daemon's lock on the file
    others = _other_watchers(connection)
    if others:
        raise CopyRefused(
            f"the {side} database {shown} is in use by another watcher process "
            f"({', '.join(others)}); stop every `watcher run` on it first"
        )
    live = _live_leases(connection)
    if live:
        raise CopyRefused(
            f"the {side} database {shown} has {live} live leases: a replica is running on "
            "it; stop every `watcher run` on it first (leases expire after `state.lease`)"
        )


def _insert(table: Table) -> Insert:
    """An INSERT of every column, each bound with its column's type; JSON keeps SQL NULL."""
    values = {}
    for column in table.columns:
        kind = JSON(none_as_null=True) if isinstance(column.type, JSON) else column.type
        values[column.name] = bindparam(column.name, type_=kind)
    return table.insert().values(values)


def _serial_columns(table: Table) -> list[str]:
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and isinstance(keys[0].type, Integer) and keys[0].autoincrement:
        return [keys[0].name]
    return []


def _move_sequences(connection: Connection, tables: list[Table]) -> None:
    """PostgreSQL: the next id of each table follows the highest id copied."""
    for table in tables:
        for column in _serial_columns(table):
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence(:t, :c),"  # noqa: S608  # our own names
                    f" coalesce((SELECT max({column}) FROM {table.name}), 0) + 1, false)"
                ),
                {"t": table.name, "c": column},
            )


def copy_state(source: Store, target: Store, *, batch: int = _BATCH) -> CopyReport:
    """Copy every row of ``source`` into the empty ``target`` (both at the head)."""
    for side, store in (("source", source), ("target", target)):
        version = store.schema_version()
        if version != SCHEMA_HEAD:
            raise CopyRefused(
                f"the {side} database is at schema {version or 'none'}, not {SCHEMA_HEAD}: "
                "run `watcher db upgrade` on it first"
            )
    tables = _tables()
    try:
        with source.engine.connect() as src, target.engine.connect() as dst:
            if not source.db.is_sqlite:  # one snapshot of every table (in place: see 2.x)
                src.execution_options(isolation_level="REPEATABLE READ")
            with src.begin(), dst.begin():
                _refuse_running(src, "source", repr(source.db))
                _refuse_running(dst, "target", repr(target.db))
                held = {name: n for name, n in _counts(dst, tables).items() if n}
                if held:
                    raise CopyRefused(_not_empty(repr(target.db), held))
                copied = _copy_tables(src, dst, tables, batch)
                if dst.dialect.name == "postgresql":
                    _move_sequences(dst, tables)
                expected = _counts(src, tables)
                if _counts(dst, tables) != expected:  # pragma: no cover - a broken driver
                    raise StoreError("the copy does not match the source; nothing was written")
    except SQLAlchemyError as exc:
        raise StoreError(f"the copy failed, nothing was written: {in_words(exc)}") from exc
    return CopyReport(tuple(copied.items()))


def _copy_tables(
    src: Connection, dst: Connection, tables: list[Table], batch: int
) -> dict[str, int]:
    copied: dict[str, int] = {}
    for table in tables:
        statement = _insert(table)
        order = list(table.primary_key.columns)
        result = src.execution_options(yield_per=batch).execute(select(table).order_by(*order))
        n = 0
        for rows in result.partitions(batch):
            dst.execute(statement, [dict(row._mapping) for row in rows])
            n += len(rows)
        copied[table.name] = n
    return copied


def _not_empty(shown: str, held: Mapping[str, int]) -> str:
    what = ", ".join(f"{n} in {name}" for name, n in sorted(held.items()))
    return (
        f"the target database {shown} already holds watcher state ({what}); "
        "copy only into an empty database (a new one, or one just made by `watcher db upgrade`)"
    )
