"""The outbox queue: recorded events and their delivery rows, one per event, notifier
and URL position (never the URL itself).

An event is queued in the transaction that detected it (:meth:`OutboxQueue.queue`, used
by a poll, an ops alert and a silence's summary alike), so an alert is never lost
between detection and delivery; its key is deterministic, so a re-run poll queues
nothing twice. The outbox worker then reads what is due and marks what it sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from watcher.models import Event, item_to_json
from watcher.store.database import Database
from watcher.store.snapshots import with_snapshots
from watcher.store.tables import DeliveryRow, DigestPartRow, EventRow
from watcher.store.values import DeliveryView, DueDelivery, EventView, Routes, event_from_row

_IN_CHUNK = 500
"""Keys per ``IN (...)`` lookup, well under SQLite's bound-parameter limit."""


def _digest(ids: Sequence[int]) -> str:
    return ",".join(str(i) for i in ids)


class OutboxQueue:
    """Events and their deliveries: queued, due, sent, failed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def queue(
        self,
        s: Session,
        events: Iterable[Event],
        poll_id: int | None,
        routes: Routes,
        queued_at: datetime,
    ) -> tuple[Event, ...]:
        """In the caller's transaction: insert the new events and their outbox rows, due
        at ``queued_at`` (the local clock: ``detected_at`` is the API's, which may run
        ahead or behind). The events that were new.

        A handful of statements whatever the number of events: the keys already recorded
        (by an earlier run of this poll) are looked up, the others inserted many at a time.
        """
        fresh: dict[str, Event] = {}
        for ev in events:
            fresh.setdefault(ev.key, ev)
        if not fresh:
            return ()
        connection = s.connection()
        keys = list(fresh)
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            known = select(col(EventRow.key)).where(col(EventRow.key).in_(chunk))
            for key in connection.execute(known).scalars():
                del fresh[key]  # recorded by an earlier run of this poll
        if not fresh:
            return ()
        fresh = with_snapshots(connection, fresh)
        rows = [
            {
                "key": ev.key,
                "watch": ev.watch,
                "kind": ev.kind.value,
                "item_id": ev.item.id if ev.item else None,
                "tiktok_id": ev.item.tiktok_id if ev.item else None,
                "detected_at": ev.detected_at,
                "created_at": queued_at,
                "poll_id": poll_id,
                "figures": ev.figures,
                "item": item_to_json(ev.item) if ev.item else None,
            }
            for ev in fresh.values()
        ]
        new_events = self._db.insert(EventRow).on_conflict_do_nothing(index_elements=["key"])
        self._db.insert_many(s, rows, new_events, "ON CONFLICT (key) DO NOTHING")
        ids: dict[str, int] = {}
        new_keys = list(fresh)
        for start in range(0, len(new_keys), _IN_CHUNK):
            chunk = new_keys[start : start + _IN_CHUNK]
            query = select(col(EventRow.key), col(EventRow.id)).where(col(EventRow.key).in_(chunk))
            ids.update({key: event_id or 0 for key, event_id in connection.execute(query)})
        deliveries = [
            {
                "event_id": ids[ev.key],
                "notifier": notifier,
                "url_index": index,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": queued_at,
            }
            for ev in fresh.values()
            for notifier, url_count in routes.get(ev.kind, ())
            for index in range(url_count)
        ]
        self._db.insert_many(s, deliveries, self._db.insert(DeliveryRow))
        return tuple(fresh.values())

    def record(self, ev: Event, routes: Routes) -> bool:
        """Record an event outside a poll (ops events); False if its key exists."""
        with self._db.write() as s:
            return bool(self.queue(s, [ev], None, routes, ev.detected_at))

    def due(self, now: datetime, limit: int = 500) -> list[DueDelivery]:
        """Pending outbox rows whose next attempt is due, oldest event first."""
        with self._db.read() as s:
            rows = s.exec(
                select(DeliveryRow, EventRow)
                .join(EventRow, col(EventRow.id) == col(DeliveryRow.event_id))
                .where(col(DeliveryRow.state) == "pending", col(DeliveryRow.next_attempt_at) <= now)
                .order_by(col(EventRow.id), col(DeliveryRow.id))
                .limit(limit)
            ).all()
            return [
                DueDelivery(
                    id=d.id or 0,
                    event_id=e.id or 0,
                    poll_id=e.poll_id,
                    notifier=d.notifier,
                    url_index=d.url_index,
                    attempts=d.attempts,
                    event=event_from_row(e),
                    next_attempt_at=d.next_attempt_at,
                    release=d.release,
                )
                for d, e in rows
            ]

    def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        with self._db.write() as s:
            s.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(ids))
                .values(state="sent", sent_at=now, attempts=col(DeliveryRow.attempts) + 1)
            )

    def mark_failed(
        self, ids: Sequence[int], error: str, next_attempt_at: datetime, *, dead: bool
    ) -> None:
        """A failed attempt: retried at ``next_attempt_at``, or given up on (``dead``)."""
        with self._db.write() as s:
            s.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(ids))
                .values(
                    state="dead" if dead else "pending",
                    last_error=error[:500],
                    next_attempt_at=next_attempt_at,
                    attempts=col(DeliveryRow.attempts) + 1,
                )
            )

    # --- the parts of a multi-part digest ----------------------------------------------

    def parts_sent(self, notifier: str, url_index: int, ids: Sequence[int]) -> list[str]:
        """Fingerprints of the leading parts of the digest of rows ``ids`` that the URL
        already took, in order (none if another digest is noted for it)."""
        with self._db.read() as s:
            rows = s.exec(
                select(DigestPartRow)
                .where(
                    col(DigestPartRow.notifier) == notifier,
                    col(DigestPartRow.url_index) == url_index,
                )
                .order_by(col(DigestPartRow.number))
            ).all()
        digest = _digest(ids)
        sent: list[str] = []
        for row in rows:
            if row.deliveries != digest:
                return []  # another digest is noted for this URL
            if row.number != len(sent):
                break
            sent.append(row.fingerprint)
        return sent

    def part_sent(
        self, notifier: str, url_index: int, ids: Sequence[int], number: int, fingerprint: str
    ) -> None:
        """Note that the URL took part ``number`` (from 0) of the digest of rows ``ids``;
        what was noted of another digest for the URL goes."""
        digest = _digest(ids)
        with self._db.write() as s:
            s.exec(
                delete(DigestPartRow).where(
                    col(DigestPartRow.notifier) == notifier,
                    col(DigestPartRow.url_index) == url_index,
                    (col(DigestPartRow.deliveries) != digest)
                    | (col(DigestPartRow.number) >= number),
                )
            )
            s.add(
                DigestPartRow(
                    notifier=notifier,
                    url_index=url_index,
                    number=number,
                    deliveries=digest,
                    fingerprint=fingerprint,
                )
            )

    def clear_parts(self, notifier: str, url_index: int) -> None:
        """Forget the URL's digest parts (its digest was sent whole)."""
        with self._db.write() as s:
            s.exec(
                delete(DigestPartRow).where(
                    col(DigestPartRow.notifier) == notifier,
                    col(DigestPartRow.url_index) == url_index,
                )
            )

    def depth(self) -> int:
        """Outbox rows still pending."""
        with self._db.read() as s:
            count = s.exec(select(func.count()).where(col(DeliveryRow.state) == "pending")).one()
            return int(count or 0)

    def events(
        self, *, since: datetime | None = None, watch: str | None = None, limit: int = 1000
    ) -> list[EventView]:
        """Events newest first, each with its delivery state per notifier URL."""
        with self._db.read() as s:
            query = select(EventRow).order_by(col(EventRow.id).desc()).limit(limit)
            if since is not None:
                query = query.where(col(EventRow.detected_at) >= since)
            if watch is not None:
                query = query.where(col(EventRow.watch) == watch)
            rows = list(s.exec(query))
            ids = [r.id for r in rows]
            deliveries: dict[int, list[DeliveryView]] = {}
            if ids:
                for d in s.exec(
                    select(DeliveryRow)
                    .where(col(DeliveryRow.event_id).in_(ids))
                    .order_by(col(DeliveryRow.notifier), col(DeliveryRow.url_index))
                ):
                    deliveries.setdefault(d.event_id, []).append(
                        DeliveryView(d.notifier, d.url_index, d.state, d.attempts, d.last_error)
                    )
            return [
                EventView(r.id or 0, event_from_row(r), tuple(deliveries.get(r.id or 0, ())))
                for r in rows
            ]
