"""Database failures said in words: what went wrong, never the SQL or its parameters.

SQLAlchemy's message carries the statement and its bound values (``[SQL: INSERT ...]
[parameters: ...]``), which are noise to an operator and may hold hostile or private
data. ``in_words`` keeps the driver's own one-line reason and adds what it means.
"""

from __future__ import annotations

_MEANINGS = (
    ("disk is full", "the disk is full"),
    ("database is locked", "another process holds the database locked"),
    ("readonly database", "the database file or its folder is read-only"),
    ("read-only", "the database is read-only"),
    ("not a database", "the file is not a watcher database (corrupt or replaced)"),
    ("malformed", "the database file is corrupt"),
    ("unable to open", "the database file cannot be opened (missing folder or permissions)"),
    ("disk i/o error", "the disk failed to read or write"),
    ("no such table", "the database has no watcher schema (deleted or replaced?)"),
    ("relation", "the database has no watcher schema (run `watcher db upgrade`)"),
    ("does not exist", "no such database or user on that server"),
    ("password authentication failed", "the database refused the user or password"),
    ("connection refused", "no database server answers at that address"),
)


def in_words(exc: BaseException) -> str:
    """The driver's reason for ``exc`` (no SQL, no parameters), with its meaning."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    reason = lines[0].strip() if lines else ""
    if "[SQL:" in reason or not reason:
        reason = type(cause).__name__
    lowered = reason.lower()
    for needle, meaning in _MEANINGS:
        if needle in lowered:
            return f"{meaning} ({reason})"
    return reason
