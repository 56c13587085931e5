"""Rows for the SQLite driver's own ``executemany``: the hot path of every poll.

SQLAlchemy binding each row of a poll costs several times what the poll's detection does;
on SQLite the store hands the driver rows already in the form SQLAlchemy's dialect would
store them (UTC datetimes as naive text, JSON columns as JSON text), so what is read back
through SQLAlchemy is the same either way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from watcher.detect import Seen
from watcher.errors import StoreError


def sqlite_text(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite dialect stores it: naive UTC text."""
    if value.tzinfo is None:
        raise StoreError("naive datetime given to the store")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_rows(rows: Sequence[Mapping[str, object]]) -> list[tuple[object, ...]]:
    """Rows as SQLAlchemy's SQLite dialect stores them: UTC datetimes as text, JSON
    columns as JSON text. A poll's rows share few distinct times, each converted once."""
    texts: dict[datetime, str] = {}

    def convert(value: object) -> object:
        if isinstance(value, datetime):
            text = texts.get(value)
            if text is None:
                text = texts[value] = sqlite_text(value)
            return text
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    return [tuple(convert(v) for v in row.values()) for row in rows]


def sqlite_item_rows(watch: str, seen: Iterable[Seen]) -> list[tuple[object, ...]]:
    """Items as SQLite rows in ``ItemRow`` column order, built directly: this runs for
    every row every poll reads, where the generic ``sqlite_rows`` costs twice as much."""
    texts: dict[datetime, str] = {}

    def text(value: datetime | None) -> str | None:
        if value is None:
            return None
        converted = texts.get(value)
        if converted is None:
            converted = texts[value] = sqlite_text(value)
        return converted

    return [
        (
            watch,
            s.item_id,
            s.tiktok_id,
            s.type.value if s.type else None,
            s.status.value if s.status else None,
            s.pinned,
            s.rank,
            s.views,
            text(s.updated_at),
            text(s.first_seen),
            text(s.last_seen),
            s.announced,
            text(s.follow_until),
            text(s.started_at),
            s.milestone,
            text(s.published_at),
            s.handle,
            s.listed,
            s.outside,
        )
        for s in seen
    ]


def sqlite_insert(table: str, columns: Sequence[str], conflict: str = "") -> str:
    """``INSERT`` SQL with ``?`` marks for our own table and column names."""
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"  # noqa: S608  # our own names
