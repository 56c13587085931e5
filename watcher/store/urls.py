"""State database URLs: which engine and driver a URL means, and how it may be shown.

A user writes ``sqlite:///watcher.db`` or ``postgresql://user:pass@host:5432/db``
(``postgres://`` too, as many hosting providers print it). PostgreSQL goes through
psycopg 3, whatever driver SQLAlchemy would pick by default; an explicit driver
(``postgresql+psycopg://``) is kept. The password is never shown: ``shown`` masks it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def engine_url(url: str) -> str:
    """``url`` with the driver SQLAlchemy should use (psycopg 3 for PostgreSQL)."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def is_postgres(url: str) -> bool:
    return url.startswith(_POSTGRES_SCHEMES) or url.startswith("postgresql+")


def parsed(url: str) -> URL | None:
    try:
        return make_url(engine_url(url))
    except ArgumentError:
        return None


def password(url: str) -> str | None:
    """The URL's password, to register with the log redactor."""
    found = parsed(url)
    return found.password if found is not None and found.password else None


def shown(url: str) -> str:
    """The URL as it may appear in a log line, a message or a status: no password."""
    found = parsed(url)
    if found is None:
        return "<unparsable database URL>"
    return found.render_as_string(hide_password=True)


def same_database(a: str, b: str) -> bool:
    """Whether two URLs name the same database (one SQLite file, or one server's db)."""
    first, second = parsed(a), parsed(b)
    if first is None or second is None:
        return a == b
    if first.get_backend_name() != second.get_backend_name():
        return False
    if first.get_backend_name() == "sqlite":
        return Path(first.database or "").resolve() == Path(second.database or "").resolve()

    def place(u: URL) -> tuple[object, ...]:
        return ((u.host or "localhost").lower(), u.port or 5432, u.database)

    return place(first) == place(second)
