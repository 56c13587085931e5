"""Ops episodes: a failing watch, a low balance, a paused poller, each open once.

An ops alert fires when its episode opens and a recovery when it closes, so a watch
failing for a day alerts once, not every poll; the open episodes live in the database,
so a restart neither repeats the alert nor forgets the recovery.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, select

from watcher.models import EventKind
from watcher.store.database import Database
from watcher.store.tables import EpisodeRow


class Episodes:
    """Open ops episodes, keyed by (kind, subject)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def open(self, kind: EventKind, subject: str, now: datetime) -> bool:
        """Open an episode; True only if it was not open already (alert once)."""
        with self._db.write() as s:
            stmt = (
                self._db.insert(EpisodeRow)
                .values(kind=kind.value, subject=subject, opened_at=now)
                .on_conflict_do_nothing(index_elements=["kind", "subject"])
                .returning(col(EpisodeRow.kind))  # rowcount of ON CONFLICT varies by driver
            )
            return s.exec(stmt).first() is not None

    def close(self, kind: EventKind, subject: str) -> bool:
        """Close an episode; True only if it was open (e.g. to send a recovery)."""
        with self._db.write() as s:
            result = s.exec(
                delete(EpisodeRow).where(
                    col(EpisodeRow.kind) == kind.value,
                    col(EpisodeRow.subject) == subject,
                )
            )
            return bool(result.rowcount)

    def opened(self) -> set[tuple[str, str]]:
        """Every open episode as (kind, subject)."""
        with self._db.read() as s:
            return {(row.kind, row.subject) for row in s.exec(select(EpisodeRow))}
