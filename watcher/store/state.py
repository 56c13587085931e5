"""The state store: one database and the aggregates over it.

``Store`` opens the database and hands out one object per aggregate: a watch's
``memory``, the ``outbox`` queue, ops ``episodes``, the credit ``ledger`` and ``meta``
facts (silences and holds are :class:`~watcher.store.control.Control`). What spans
aggregates lives here: a poll's results are stored by :meth:`Store.apply_poll` in ONE
transaction (memory, poll record, credits, events and their outbox rows), so a crash
leaves the poll fully applied or not at all, and since event keys are deterministic a
re-run poll records nothing twice; retention prunes every aggregate at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, or_
from sqlmodel import Session, col, select

from watcher.models import Event
from watcher.planner.steps import Outcome
from watcher.store.database import Database
from watcher.store.episodes import Episodes
from watcher.store.ledger import Ledger
from watcher.store.meta import Meta
from watcher.store.queue import OutboxQueue
from watcher.store.tables import CreditRow, DeliveryRow, EventRow, ItemRow, PollRow, WatchRow
from watcher.store.values import Applied, PollRecord, Routes
from watcher.store.watches import WatchMemory


class Store:
    """The state database and its aggregates. Thread-safe; one writer at a time."""

    def __init__(self, url: str, *, migrate: bool = True, read_only: bool = False) -> None:
        """Open (and migrate) the database at ``url``; see :class:`Database`."""
        self.db = Database(url, migrate=migrate, read_only=read_only)
        self.url = url
        self.memory = WatchMemory(self.db)
        self.outbox = OutboxQueue(self.db)
        self.episodes = Episodes(self.db)
        self.ledger = Ledger(self.db)
        self.meta = Meta(self.db)
        self.fence: Callable[[Session, str], None] | None = None
        """Run first in each poll's transaction (``watcher.store.leases.Leases.fence``): it
        raises, and the poll is not stored, when another replica holds the watch now."""

    def __repr__(self) -> str:
        return f"Store({self.db!r})"

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def migrate(self) -> bool:
        """Migrate to the head; True if this call changed the schema."""
        return self.db.migrate()

    def schema_version(self) -> str | None:
        return self.db.schema_version()

    def close(self) -> None:
        self.db.close()

    def apply_poll(self, record: PollRecord, routes: Routes) -> Applied:
        """Store one poll atomically: memory, events, their outbox rows, poll, credits."""
        with self.db.write() as s:
            if self.fence is not None:
                self.fence(s, record.watch)
            self.memory.save(s, record)
            detection = record.detection
            poll = PollRow(
                watch=record.watch,
                started_at=record.started_at,
                duration_ms=record.duration_ms,
                outcome=Outcome(record.outcome).value,
                items=len(detection.touched) if detection else 0,
                events=len(detection.events) if detection else 0,
                credits=record.credits,
                error=record.error,
            )
            s.add(poll)
            s.flush()
            poll_id = int(poll.id or 0)
            self.ledger.add(s, record.started_at, record.watch, record.credits, record.remaining)
            new_events: tuple[Event, ...] = ()
            if detection is not None:
                self.memory.upsert_items(s, record.watch, detection)
                new_events = self.outbox.queue(
                    s, detection.events, poll_id, routes, record.started_at
                )
            return Applied(poll_id, new_events)

    def prune(self, now: datetime, *, retention: timedelta, grace: timedelta) -> int:
        """Delete old polls, ledger rows and delivered/dead events; forget long-removed watches.

        Undelivered events are never pruned: nothing recorded is lost before delivery.
        """
        cutoff = now - retention
        with self.db.write() as s:
            removed = 0
            removed += s.exec(delete(PollRow).where(col(PollRow.started_at) < cutoff)).rowcount
            removed += s.exec(delete(CreditRow).where(col(CreditRow.at) < cutoff)).rowcount
            pending = select(col(DeliveryRow.event_id)).where(col(DeliveryRow.state) == "pending")
            old = select(col(EventRow.id)).where(
                col(EventRow.detected_at) < cutoff,
                col(EventRow.id).not_in(pending),
            )
            s.exec(delete(DeliveryRow).where(col(DeliveryRow.event_id).in_(old)))
            removed += s.exec(
                delete(EventRow).where(
                    col(EventRow.detected_at) < cutoff,
                    col(EventRow.id).not_in(pending),
                )
            ).rowcount
            gone = select(col(WatchRow.name)).where(
                and_(col(WatchRow.removed_at).is_not(None), col(WatchRow.removed_at) < now - grace)
            )
            names = list(s.exec(gone))
            if names:
                removed += s.exec(delete(ItemRow).where(col(ItemRow.watch).in_(names))).rowcount
                s.exec(delete(WatchRow).where(or_(*(col(WatchRow.name) == n for n in names))))
            return int(removed)
