"""What detection works on, as plain values: a watch's rules (from its config), its memory
(``WatchState``, one ``Seen`` per remembered item), what one poll observed, and what
detection returns. ``detect.py`` holds the rules that turn these into events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from watcher.models import Event, EventKind, Item, ItemStatus, ItemType


class FirstRun(StrEnum):
    SILENT = "silent"
    SUMMARY = "summary"
    NOTIFY_ALL = "notify_all"


@dataclass(frozen=True, slots=True)
class Rules:
    """What detection needs to know of a watch's config."""

    watch: str
    events: frozenset[EventKind]
    type: ItemType | None = None
    status: ItemStatus | None = None
    min_views: int | None = None
    language: str | None = None
    handle: str | None = None
    filter_window: timedelta = timedelta(days=7)
    min_climb: int = 20
    milestones: tuple[int, ...] = (7, 14, 30)

    def in_scope(self, item: Item) -> bool:
        """Static filters: an item failing them is never part of the watch."""
        if self.type is not None and item.type is not None and item.type != self.type:
            return False
        if self.handle is not None:
            handle = (item.handle or "").lstrip("@").casefold()
            if handle != self.handle.lstrip("@").casefold():
                return False
        if self.language is not None:
            return (item.language or "").casefold() == self.language.casefold()
        return True

    def passes_metrics(self, item: Item) -> bool:
        """Filters that an item may cross over time (views grow, status flips)."""
        if self.min_views is not None and (item.views or 0) < self.min_views:
            return False
        return self.status is None or item.status == self.status


@dataclass(frozen=True, slots=True)
class Seen:
    """What a watch remembers of one item."""

    item_id: str
    first_seen: datetime
    last_seen: datetime
    tiktok_id: str | None = None
    type: ItemType | None = None
    status: ItemStatus | None = None
    pinned: bool | None = None
    rank: int | None = None
    views: int | None = None
    updated_at: datetime | None = None
    announced: bool = True
    follow_until: datetime | None = None
    started_at: datetime | None = None
    milestone: int = 0
    published_at: datetime | None = None
    handle: str | None = None
    listed: bool = False
    """Whether the item is in the scope's ``newest`` order as last known (the stored order
    of the documented-only strategy: listed items sorted by ``published_at``, then id)."""
    outside: bool = False
    """Out of the watch's scope (a near-miss handle, another language) but in the API's
    list, so kept for the stored order only: it never raises an event."""


@dataclass(frozen=True, slots=True)
class WatchState:
    """A watch's memory between polls.

    ``baseline_at``: API time of the first run; items created later are new.
    ``watermark``: the latest ``updatedAt`` read; the next change feed starts after it.
    ``refresh``: the ``latestReadyDate`` fully processed, so an unchanged one skips the poll.
    ``exact``: whether ``updatedAt`` has only ever moved on library changes for this watch
    (False once a row's ``updatedAt`` moved while its status, pin and indexing did not).
    ``moves``: what was learned of that per scope: True (it moves on metric updates: a
    known row's moved with no change), False (a row read two refreshes after the baseline
    still had an ``updatedAt`` from before it), None (not yet known). ``max_lag``: the largest
    ``indexedAt - publishedAt`` seen in scope.
    """

    baseline_at: datetime | None = None
    watermark: datetime | None = None
    refresh: str | None = None
    exact: bool = True
    has_baseline: bool = False
    items: Mapping[str, Seen] = field(default_factory=dict)
    moves: bool | None = None
    max_lag: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """What one poll read: the change feed, re-checked followed items, the tracked set."""

    at: datetime
    refresh: str | None
    changed: Sequence[Item] = ()
    rechecked: Sequence[Item] = ()
    gone: Sequence[str] = ()
    tracked: Sequence[Item] | None = None
    watermark: datetime | None = None
    exact: bool = True
    listed: frozenset[str] = frozenset()
    """Ids this poll found in the scope's ``newest`` order (documented-only strategy)."""
    delisted: frozenset[str] = frozenset()
    """Ids this poll found gone from the scope's ``newest`` order (removed, out of scope)."""
    detected_at: datetime | None = None
    """The local time of the poll, which events carry (users read "detected at" on their
    own clock); ``at`` (the API's) stays for comparisons with item timestamps."""

    @property
    def stamp(self) -> datetime:
        return self.detected_at or self.at


@dataclass(frozen=True, slots=True)
class Detection:
    state: WatchState
    events: tuple[Event, ...]
    touched: frozenset[str]


def event_key(watch: str, kind: EventKind, item_id: str, change: str) -> str:
    """The deterministic identity of an event: watch, kind, item and the change."""
    return f"{watch}|{kind.value}|{item_id}|{change}"


def latest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two optional instants."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def unique_events(events: Iterable[Event]) -> tuple[Event, ...]:
    """Events in order, one per key (a re-run records nothing twice)."""
    seen: dict[str, Event] = {}
    for event in events:
        seen.setdefault(event.key, event)
    return tuple(seen.values())


def iso_or(value: datetime | None, fallback: str | None) -> str:
    """``value`` in ISO 8601, else ``fallback`` (else empty): an event key's change part."""
    return value.isoformat() if value is not None else (fallback or "")


def first_seen_at(item: Item) -> datetime | None:
    """When the library first had ``item``: ``createdAt``, else ``indexedAt``, else
    ``publishedAt``."""
    return item.created_at or item.indexed_at or item.published_at


def later(value: datetime | None, than: datetime | None) -> bool:
    """Whether ``value`` is known and after ``than`` (anything is after an unknown)."""
    if value is None:
        return False
    return than is None or value > than
