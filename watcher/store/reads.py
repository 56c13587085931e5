"""Read-only views of the state database for the dashboard.

The dashboard pages through events with filters, draws credits per day and shows each
watch's history; these queries do that in a few statements whatever the history's size
(the credit chart is one ``SUM(CASE ...)`` over the ledger, not one query per day). They
only read: the dashboard never writes, spends no credit and works while the API is down.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy import and_, case, func
from sqlalchemy import select as select_columns
from sqlmodel import col, select

from watcher.store.state import Store
from watcher.store.tables import CreditRow, DeliveryRow, EventRow, PollRow, WatchRow
from watcher.store.values import DeliveryView, EventView, event_from_row

__all__ = ["EventPage", "PollView", "Reads", "WatchStrategy"]


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events newest first; ``before`` is the cursor of the next (older) page, if any."""

    events: tuple[EventView, ...]
    before: int | None


@dataclass(frozen=True, slots=True)
class PollView:
    """One poll of a watch, for its history."""

    started_at: datetime
    duration_ms: int
    outcome: str
    items: int
    events: int
    credits: int
    error: str | None


@dataclass(frozen=True, slots=True)
class WatchStrategy:
    """How a watch reads the API: ``exact`` is whether its change feed is trusted (the
    ``updatedAfter`` feed with exact ``updatedAt``); False means documented-only probing."""

    has_baseline: bool
    exact: bool


class Reads:
    """The dashboard's queries over one ``Store``'s database."""

    def __init__(self, store: Store) -> None:
        self._session = store.db.read

    def events(
        self,
        *,
        watch: str | None = None,
        kinds: Collection[str] = (),
        since: datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> EventPage:
        """A page of events matching every filter given (``kinds``: any of them), by id
        newest first; ``before`` continues below that id."""
        with self._session() as s:
            query = select(EventRow).order_by(col(EventRow.id).desc()).limit(limit + 1)
            if watch is not None:
                query = query.where(col(EventRow.watch) == watch)
            if kinds:
                query = query.where(col(EventRow.kind).in_(sorted(kinds)))
            if since is not None:
                query = query.where(col(EventRow.detected_at) >= since)
            if before is not None:
                query = query.where(col(EventRow.id) < before)
            rows = list(s.exec(query))
            more = len(rows) > limit
            rows = rows[:limit]
            ids = [r.id for r in rows if r.id is not None]
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
            views = tuple(
                EventView(r.id or 0, event_from_row(r), tuple(deliveries.get(r.id or 0, ())))
                for r in rows
            )
            return EventPage(views, views[-1].id if more and views else None)

    def event_kinds(self) -> list[str]:
        """The kinds of event recorded so far, sorted."""
        with self._session() as s:
            return sorted(str(k) for k in s.exec(select(col(EventRow.kind)).distinct()))

    def credits_per_window(self, bounds: Sequence[datetime], watch: str | None = None) -> list[int]:
        """Credits spent in each window ``[bounds[i], bounds[i+1])``: one statement."""
        if len(bounds) < 2:
            return []
        windows = list(pairwise(bounds))
        at = col(CreditRow.at)
        sums = [
            func.coalesce(
                func.sum(case((and_(at >= lo, at < hi), col(CreditRow.credits)), else_=0)), 0
            )
            for lo, hi in windows
        ]
        query = select_columns(*sums).where(at >= bounds[0], at < bounds[-1])
        if watch is not None:
            query = query.where(col(CreditRow.watch) == watch)
        with self._session() as s:
            row = s.execute(query).one()
            return [int(v or 0) for v in row]

    def polls(self, watch: str, limit: int = 50) -> list[PollView]:
        """The watch's latest polls, newest first."""
        with self._session() as s:
            rows = s.exec(
                select(PollRow)
                .where(col(PollRow.watch) == watch)
                .order_by(col(PollRow.started_at).desc(), col(PollRow.id).desc())
                .limit(limit)
            )
            return [
                PollView(
                    r.started_at, r.duration_ms, r.outcome, r.items, r.events, r.credits, r.error
                )
                for r in rows
            ]

    def strategies(self) -> dict[str, WatchStrategy]:
        """Each known watch's reading strategy, by name."""
        with self._session() as s:
            rows = s.execute(
                select_columns(col(WatchRow.name), col(WatchRow.has_baseline), col(WatchRow.exact))
            )
            return {name: WatchStrategy(bool(base), bool(exact)) for name, base, exact in rows}
