"""Plain values the state store hands in and out, and the row conversions behind them.

Only ``watcher.store`` builds these from database rows; callers import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from watcher.detect import Detection, Seen
from watcher.models import Event, EventKind, ItemStatus, ItemType, item_from_json
from watcher.planner.steps import Outcome, Resume
from watcher.store.tables import EventRow, ItemRow

Routes = Mapping[EventKind, Sequence[tuple[str, int]]]
"""For each event kind, the (notifier name, number of URLs) its deliveries go to."""


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What one poll did, to be stored with its outcome (and detection, if it succeeded)."""

    watch: str
    started_at: datetime
    duration_ms: int
    outcome: Outcome
    credits: int = 0
    remaining: int | None = None
    error: str | None = None
    fingerprint: str = ""
    detection: Detection | None = None
    resume: Resume = field(default_factory=Resume)

    @classmethod
    def failed(
        cls,
        watch: str,
        started_at: datetime,
        error: Exception,
        *,
        duration_ms: int = 0,
        credits: int = 0,
        remaining: int | None = None,
        fingerprint: str = "",
    ) -> PollRecord:
        """A failed poll: nothing found, the error kept (it counts towards failing)."""
        return cls(
            watch,
            started_at,
            duration_ms,
            Outcome.FAILED,
            credits=credits,
            remaining=remaining,
            error=str(error),
            fingerprint=fingerprint,
        )


@dataclass(frozen=True, slots=True)
class Applied:
    """What ``apply_poll`` stored: the poll's id and the events that were new."""

    poll_id: int
    new_events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """One outbox row due for sending, with its event."""

    id: int
    event_id: int
    poll_id: int | None
    notifier: str
    url_index: int
    attempts: int
    event: Event
    next_attempt_at: datetime | None = None
    release: str | None = None
    """Set when the row goes out in a roundup of held alerts (one message per key)."""


@dataclass(frozen=True, slots=True)
class DeliveryView:
    notifier: str
    url_index: int
    state: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class EventView:
    """An event with its delivery state, for ``watcher events``."""

    id: int
    event: Event
    deliveries: tuple[DeliveryView, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class WatchInfo:
    """One watch's bookkeeping, for ``watcher status`` and the scheduler."""

    name: str
    last_poll_at: datetime | None
    last_outcome: str | None
    last_error: str | None
    consecutive_failures: int
    refresh: str | None
    has_baseline: bool
    removed_at: datetime | None
    exact: bool = True
    """Whether the API's ``updatedAt`` has only moved on library changes for this watch."""
    moves: bool | None = None
    """Learned per scope: whether ``updatedAt`` moves on metric updates (None: unknown)."""


def event_from_row(row: EventRow) -> Event:
    item = item_from_json(row.item) if row.item else None
    return Event(
        key=row.key,
        kind=EventKind(row.kind),
        watch=row.watch,
        detected_at=row.detected_at,
        item=item,
        figures=dict(row.figures or {}),
    )


def seen_from_row(row: ItemRow) -> Seen:
    return Seen(
        item_id=row.item_id,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        tiktok_id=row.tiktok_id,
        type=ItemType(row.type) if row.type else None,
        status=ItemStatus(row.status) if row.status else None,
        pinned=row.pinned,
        rank=row.rank,
        views=row.views,
        updated_at=row.updated_at,
        announced=row.announced,
        follow_until=row.follow_until,
        started_at=row.started_at,
        milestone=row.milestone,
        published_at=row.published_at,
        handle=row.handle,
        listed=row.listed,
        outside=row.outside,
    )


def seen_values(watch: str, seen: Seen) -> dict[str, object]:
    return {
        "watch": watch,
        "item_id": seen.item_id,
        "tiktok_id": seen.tiktok_id,
        "type": seen.type.value if seen.type else None,
        "status": seen.status.value if seen.status else None,
        "pinned": seen.pinned,
        "rank": seen.rank,
        "views": seen.views,
        "updated_at": seen.updated_at,
        "first_seen": seen.first_seen,
        "last_seen": seen.last_seen,
        "announced": seen.announced,
        "follow_until": seen.follow_until,
        "started_at": seen.started_at,
        "milestone": seen.milestone,
        "published_at": seen.published_at,
        "handle": seen.handle,
        "listed": seen.listed,
        "outside": seen.outside,
    }
