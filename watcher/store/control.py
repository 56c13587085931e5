"""Delivery control in the state database: silences, held and silenced outbox rows, and
each digest notifier's schedule mark.

All of it lives in the database (not in the daemon's memory), so a silence added by
``watcher silence add`` reaches a running daemon at its next delivery pass, survives a
restart and is shared by replicas. Every change of state is one transaction: a release
(held rows turned into one roundup, plus the digest mark), a silence's summary (its
``silence_ended`` event, outbox rows and the ``summarized_at`` mark), so a crash in the
middle repeats or loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, true, update
from sqlmodel import Session, col, select

from watcher.delivery_rules import Silence
from watcher.models import OPS_KINDS, Event, EventKind
from watcher.store.state import Store
from watcher.store.tables import DeliveryRow, DigestMarkRow, EventRow, SilenceRow
from watcher.store.values import Routes, event_from_row

DELIVERY_STATES = ("pending", "held", "sent", "silenced", "dead")


@dataclass(frozen=True, slots=True)
class SilenceView:
    """A silence with what it held, for ``watcher silence list``."""

    silence: Silence
    created_at: datetime
    held: int
    summarized_at: datetime | None


@dataclass(frozen=True, slots=True)
class HeldRow:
    """A held outbox row with its event (for silences re-checked at release)."""

    id: int
    event: Event


def _silence(row: SilenceRow) -> Silence:
    return Silence(
        id=row.id or 0,
        starts_at=row.created_at,
        ends_at=row.ends_at,
        watch=row.watch,
        handle=row.handle,
        shop=row.shop,
        item=row.item,
        kinds=frozenset(row.kinds or ()),
        reason=row.reason,
        expired_at=row.expired_at,
    )


class Control:
    """Silences, holds and digest marks over a :class:`Store`'s database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- silences -----------------------------------------------------------------------

    def add_silence(
        self,
        now: datetime,
        ends_at: datetime,
        *,
        watch: str | None = None,
        handle: str | None = None,
        shop: str | None = None,
        item: str | None = None,
        kinds: Sequence[str] = (),
        reason: str | None = None,
    ) -> int:
        """Store a new silence; its id."""
        Silence(0, now, ends_at, watch, handle, shop, item, frozenset(kinds))  # validates
        with self.store.db.write() as s:
            row = SilenceRow(
                watch=watch,
                handle=handle,
                shop=shop,
                item=item,
                kinds=sorted(set(kinds)),
                reason=reason,
                created_at=now,
                ends_at=ends_at,
            )
            s.add(row)
            s.flush()
            return int(row.id or 0)

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End a silence now; False if there is no such silence still running."""
        with self.store.db.write() as s:
            row = s.get(SilenceRow, silence_id)
            if row is None or row.expired_at is not None or row.ends_at <= now:
                return False
            row.expired_at = now
            s.add(row)
            return True

    def silences(self, *, everything: bool = False, now: datetime) -> list[SilenceView]:
        """Silences (running ones, or all with ``everything``) with the alerts each held."""
        with self.store.db.read() as s:
            query = select(SilenceRow).order_by(col(SilenceRow.id))
            if not everything:
                query = query.where(
                    col(SilenceRow.ends_at) > now, col(SilenceRow.expired_at).is_(None)
                )
            rows = list(s.exec(query))
            counts = dict(
                s.exec(
                    select(
                        col(DeliveryRow.silence_id), func.count(func.distinct(DeliveryRow.event_id))
                    )
                    .where(col(DeliveryRow.state) == "silenced")
                    .group_by(col(DeliveryRow.silence_id))
                ).all()
            )
            return [
                SilenceView(_silence(r), r.created_at, int(counts.get(r.id, 0)), r.summarized_at)
                for r in rows
            ]

    def open_silences(self) -> list[Silence]:
        """Every silence not yet summarized: the running ones and those just ended."""
        with self.store.db.read() as s:
            rows = s.exec(select(SilenceRow).where(col(SilenceRow.summarized_at).is_(None)))
            return [_silence(r) for r in rows]

    def silence(self, ids: Mapping[int, int]) -> None:
        """Mark outbox rows silenced: ``{delivery id: silence id}``."""
        if not ids:
            return
        by_silence: dict[int, list[int]] = {}
        for delivery, silence in ids.items():
            by_silence.setdefault(silence, []).append(delivery)
        with self.store.db.write() as s:
            for silence, deliveries in by_silence.items():
                s.exec(
                    update(DeliveryRow)
                    .where(
                        col(DeliveryRow.id).in_(deliveries),
                        col(DeliveryRow.state).in_(("pending", "held")),
                    )
                    .values(state="silenced", silence_id=silence, release=None)
                )

    def summarize(self, silence: Silence, now: datetime, routes: Routes) -> Event | None:
        """Close an ended silence: ONE ``silence_ended`` event, queued to the notifiers its
        alerts were for, saying what it held (counts per watch and kind). None when it held
        nothing (then it just closes). ``routes`` maps the event kind to those notifiers'
        (name, URL count); notifiers missing from it are skipped."""
        with self.store.db.write() as s:
            row = s.get(SilenceRow, silence.id)
            if row is None or row.summarized_at is not None:
                return None
            row.summarized_at = now
            s.add(row)
            held = s.exec(
                select(col(EventRow.watch), col(EventRow.kind), col(DeliveryRow.notifier))
                .join(EventRow, col(EventRow.id) == col(DeliveryRow.event_id))
                .where(col(DeliveryRow.silence_id) == silence.id)
                .distinct()
            ).all()
            if not held:
                return None
            wanted = {notifier for _, _, notifier in held}
            table = s.exec(
                select(
                    col(EventRow.watch), col(EventRow.kind), func.count(func.distinct(EventRow.id))
                )
                .join(DeliveryRow, col(EventRow.id) == col(DeliveryRow.event_id))
                .where(col(DeliveryRow.silence_id) == silence.id)
                .group_by(col(EventRow.watch), col(EventRow.kind))
                .order_by(col(EventRow.watch), col(EventRow.kind))
            ).all()
            figures: dict[str, object] = {
                "silence": silence.id,
                "matchers": silence.describe(),
                "reason": silence.reason,
                "held": [[w, k, int(n)] for w, k, n in table],
                "total": sum(int(n) for _, _, n in table),
            }
            event = Event(
                f"silence|{silence.id}|ended",
                EventKind.SILENCE_ENDED,
                "watcher",
                now,
                None,
                figures,
            )
            targets = [(n, c) for n, c in routes.get(EventKind.SILENCE_ENDED, ()) if n in wanted]
            self.store.outbox.queue(s, [event], None, {EventKind.SILENCE_ENDED: targets}, now)
            return event

    # --- holding and releasing ----------------------------------------------------------

    def hold(self, ids: Sequence[int]) -> None:
        """Hold pending outbox rows until their notifier's window or digest releases them."""
        if not ids:
            return
        with self.store.db.write() as s:
            s.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(ids), col(DeliveryRow.state) == "pending")
                .values(state="held", release=None)
            )

    def held(self, notifier: str, *, queued: bool = False) -> list[HeldRow]:
        """A notifier's held rows, oldest event first; with ``queued``, also its item alerts
        queued but not held yet (so a digest has what was recorded just before it fired)."""
        waiting = and_(
            col(DeliveryRow.state) == "pending",
            col(DeliveryRow.release).is_(None),
            col(EventRow.kind).not_in([k.value for k in OPS_KINDS]),
        )
        with self.store.db.read() as s:
            rows = s.exec(
                select(DeliveryRow, EventRow)
                .join(EventRow, col(EventRow.id) == col(DeliveryRow.event_id))
                .where(
                    col(DeliveryRow.notifier) == notifier,
                    or_(col(DeliveryRow.state) == "held", waiting) if queued else true(),
                    col(DeliveryRow.state) == "held" if not queued else true(),
                )
                .order_by(col(EventRow.id), col(DeliveryRow.id))
            ).all()
            return [HeldRow(d.id or 0, event_from_row(e)) for d, e in rows]

    def held_notifiers(self) -> set[str]:
        with self.store.db.read() as s:
            rows = s.exec(
                select(col(DeliveryRow.notifier)).where(col(DeliveryRow.state) == "held").distinct()
            )
            return set(rows)

    def release(
        self,
        notifier: str,
        key: str,
        ids: Sequence[int],
        now: datetime,
        *,
        silenced: Mapping[int, int] | None = None,
        mark: tuple[str, datetime] | None = None,
    ) -> None:
        """In one transaction: held rows ``ids`` become due as one roundup named ``key``,
        the ``silenced`` ones are muted, and the digest ``mark`` (schedule, fire time) is
        remembered, so a crash neither loses the digest nor sends it twice."""
        with self.store.db.write() as s:
            if ids:
                s.exec(
                    update(DeliveryRow)
                    .where(
                        col(DeliveryRow.id).in_(ids),
                        col(DeliveryRow.state).in_(("held", "pending")),
                    )
                    .values(state="pending", release=key, next_attempt_at=now)
                )
            for delivery, silence in (silenced or {}).items():
                s.exec(
                    update(DeliveryRow)
                    .where(
                        col(DeliveryRow.id) == delivery,
                        col(DeliveryRow.state).in_(("held", "pending")),
                    )
                    .values(state="silenced", silence_id=silence, release=None)
                )
            if mark is not None:
                self._set_mark(s, notifier, *mark)

    def digest_mark(self, notifier: str) -> tuple[str, datetime] | None:
        """(schedule, last fire time digested) of a digest notifier, if it has one."""
        with self.store.db.read() as s:
            row = s.get(DigestMarkRow, notifier)
            return (row.schedule, row.last_at) if row else None

    def set_digest_mark(self, notifier: str, schedule: str, at: datetime) -> None:
        with self.store.db.write() as s:
            self._set_mark(s, notifier, schedule, at)

    def _set_mark(self, s: Session, notifier: str, schedule: str, at: datetime) -> None:
        stmt = self.store.db.insert(DigestMarkRow).values(
            notifier=notifier, schedule=schedule, last_at=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["notifier"], set_={"schedule": schedule, "last_at": at}
        )
        s.exec(stmt)

    # --- reporting ----------------------------------------------------------------------

    def delivery_states(self) -> dict[str, int]:
        """Outbox rows per delivery state (every state listed, zeros included)."""
        with self.store.db.read() as s:
            rows = s.exec(
                select(col(DeliveryRow.state), func.count()).group_by(col(DeliveryRow.state))
            ).all()
        counts = dict.fromkeys(DELIVERY_STATES, 0)
        counts.update({state: int(n) for state, n in rows})
        return counts
