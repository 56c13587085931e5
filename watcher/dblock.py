"""One delivering process per SQLite database: an OS lock on the database file itself.

Two processes delivering from one outbox (two ``watcher run``, or ``watcher once`` beside
a running daemon) would both send every alert. Each takes ``flock(LOCK_EX | LOCK_NB)`` on
the database file before it polls or delivers; the OS drops the lock when the process
dies, however it dies, so a crash never leaves a stale lock. The lock writes no file of
its own (beside the database are only SQLite's ``-wal``/``-shm`` and the outbox's
``.sent``, its journal of sends the database failed to record).

``flock`` locks are separate from the POSIX record locks SQLite takes on the same file
(on Linux they do not interact), so holding one never blocks SQLite. The descriptor is
kept open until ``release``: closing any descriptor of the file would drop SQLite's POSIX
locks of this process too, so it is closed only after the store is closed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from watcher.errors import StoreError


class DatabaseBusy(StoreError):
    """Another watcher process delivers from this database."""


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for an in-memory or non-SQLite database."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url.removeprefix(prefix).split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


class DatabaseLock:
    """The exclusive delivery lock on one database file, held until ``release``."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def file_changed(self) -> str | None:
        """'deleted' or 'replaced' if the path no longer names the file we opened."""
        if self._fd is None:
            return None
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return "deleted"
        except OSError:
            return None
        opened = os.fstat(self._fd)
        if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
            return "replaced"
        return None

    def release(self) -> None:
        """Drop the lock (after the store is closed: see the module docstring)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def acquire(database_url: str, *, purpose: str) -> DatabaseLock | None:
    """Take the delivery lock of the database, or raise ``DatabaseBusy``.

    ``purpose`` says who asks (``watcher run``, ``watcher once``) for the error message.
    Returns None for databases that are not a local SQLite file.
    """
    path = sqlite_path(database_url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the database file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseBusy(
            f"another watcher process (a `watcher run`, or a `watcher once`) is delivering "
            f"from {path}; {purpose} would send the same alerts again, so it does not start. "
            "Stop the other process first (`watcher once --dry-run` works beside it)."
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock the database file {path}: {exc.strerror}") from None
    return DatabaseLock(path, fd)
