"""PURE detection: (what a watch remembers, what one poll saw) -> (new memory, events).

No I/O and no clock reads: the poll's API time is passed in. Every comparison with item
timestamps uses the API's clock (``baseline_at``, ``watermark``, item timestamps).

How each event is found:

- ``new_ad`` / ``new_video``: an item not remembered whose ``createdAt`` (else
  ``indexedAt``, else ``publishedAt``) is later than the watch's baseline. Under a metric
  filter (``min_views``) a new item below it is *followed* until ``filter_window`` ends and
  announced when it crosses; an item from before the baseline that crosses is silent.
- ``pinned`` / ``unpinned``: a remembered item whose pin state flipped; for an item first
  met after the baseline, the pin timestamps (``lastPinnedAt``/``lastUnpinnedAt``) later
  than the previous watermark prove a change.
- ``ad_stopped`` / ``ad_resumed``: a remembered ad whose status flipped. An ad first met
  after the baseline whose ``updatedAt`` moved with no pin change and no re-index changed
  status, which is only trusted while the API's ``updatedAt`` is *exact* (moves only on
  library changes); see ``WatchState.exact``.
- ``rank_jump``: an item of the tracked set whose rank improved by ``min_climb`` or more
  since it was last observed.
- ``ad_milestone``: a remembered ad, active, whose run (from ``daysRunning``, else
  ``publishedAt``, on the API's clock) reaches one of the watch's ``milestones`` days,
  once per ad and milestone; milestones already passed when the ad was first met are not
  announced. Memory only: no extra reads.

Every event carries a deterministic key (watch, kind, item, the change) so re-running a
poll after a crash records nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from watcher.memory import (
    Detection,
    FirstRun,
    Observation,
    Rules,
    Seen,
    WatchState,
    event_key,
    first_seen_at,
    iso_or,
    later,
    latest,
    unique_events,
)
from watcher.models import Event, EventKind, Item, ItemStatus, ItemType

__all__ = [
    "Detection",
    "FirstRun",
    "Observation",
    "Rules",
    "Seen",
    "WatchState",
    "baseline",
    "detect",
    "event_key",
]

DAY = timedelta(days=1)
QUIET = timedelta(days=2)
"""A row read more than this after the baseline (two daily refreshes at least) with an
``updatedAt`` from before it shows that metric updates don't move ``updatedAt``
(``WatchState.moves`` False); a known row whose ``updatedAt`` moved with no change shows
they do (True, which wins)."""


def _started(item: Item, at: datetime) -> datetime | None:
    """When an ad started running, on the API's clock: ``daysRunning`` back from ``at``,
    else its ``publishedAt``."""
    if item.days_running is not None:
        return at - item.days_running * DAY
    return item.published_at


class _Detector:
    """One detection pass; collects events and the items it touched."""

    def __init__(self, rules: Rules, state: WatchState, obs: Observation) -> None:
        self.rules = rules
        self.state = state
        self.obs = obs
        self.items: dict[str, Seen] = dict(state.items)
        self.events: list[Event] = []
        self.touched: set[str] = set()
        self.read: dict[str, Item] = {}
        self.exact = state.exact
        """Learned: ``updatedAt`` has only moved on library changes for this watch."""
        self.infer = obs.exact
        """Whether this poll's rows may be read as a change feed (a moved ``updatedAt``
        on an unknown row means a status change): only a feed's rows, not the order's."""
        self.moves = state.moves
        self.max_lag = state.max_lag

    def emit(self, kind: EventKind, item: Item, change: str, **figures: object) -> None:
        if kind not in self.rules.events:
            return
        key = event_key(self.rules.watch, kind, item.id, change)
        self.events.append(Event(key, kind, self.rules.watch, self.obs.stamp, item, dict(figures)))

    def remember(
        self,
        item: Item,
        seen: Seen | None,
        *,
        announced: bool | None = None,
        follow_until: datetime | None = None,
        outside: bool = False,
    ) -> Seen:
        """Store what this poll saw of ``item``. ``announced=True`` ends any following,
        ``False`` follows it until ``follow_until``; ``None`` keeps both as they were.

        Built field by field, not with ``dataclasses.replace``: this runs for every row a
        poll reads, and ``replace`` is several times slower.
        """
        at = self.obs.at
        started = _started(item, at)
        if seen is None:  # milestones already passed when first met are not news
            passed = [n for n in self.rules.milestones if started and at - started >= n * DAY]
            seen = Seen(item_id=item.id, first_seen=at, last_seen=at, milestone=max(passed or [0]))
        base = seen
        if announced is None:
            announced, follow_until = base.announced, base.follow_until
        elif announced:
            follow_until = None
        updated = Seen(
            item_id=base.item_id,
            first_seen=base.first_seen,
            last_seen=at,
            tiktok_id=item.tiktok_id or base.tiktok_id,
            type=item.type or base.type,
            status=item.status or base.status,
            pinned=item.pinned if item.pinned is not None else base.pinned,
            rank=item.rank if item.rank is not None else base.rank,
            views=item.views if item.views is not None else base.views,
            updated_at=item.updated_at or base.updated_at,
            announced=announced,
            follow_until=follow_until,
            started_at=base.started_at or started,
            milestone=base.milestone,
            published_at=item.published_at or base.published_at,
            handle=item.handle or base.handle,
            listed=base.listed or item.id in self.obs.listed,
            outside=outside or base.outside,
        )
        if item.published_at is not None and item.indexed_at is not None:
            lag = item.indexed_at - item.published_at
            if self.max_lag is None or lag > self.max_lag:
                self.max_lag = lag
        self.items[item.id] = updated
        self.read[item.id] = item
        self.touched.add(item.id)
        return updated

    def new_kind(self, item: Item) -> EventKind:
        kind = item.type or self.rules.type  # a type-filtered scope knows what it holds
        return EventKind.NEW_AD if kind == ItemType.AD else EventKind.NEW_VIDEO

    def announce_new(self, item: Item) -> None:
        self.emit(self.new_kind(item), item, "new", views=item.views)

    def changed(self, item: Item) -> None:
        """An item from the change feed: new, re-indexed, or its status/pin moved."""
        if not self.rules.in_scope(item):
            if item.id in self.obs.listed:  # kept for the stored order, silently
                self.remember(item, self.items.get(item.id), announced=True, outside=True)
            return
        seen = self.items.get(item.id)
        if seen is None:
            self.first_meeting(item)
        else:
            self.known_changed(item, seen)

    def first_meeting(self, item: Item) -> None:
        if self.state.has_baseline and later(first_seen_at(item), self.state.baseline_at):
            if self.rules.passes_metrics(item):
                self.announce_new(item)
                self.remember(item, None, announced=True)
            else:
                until = self.obs.at + self.rules.filter_window
                self.remember(item, None, announced=False, follow_until=until)
            self.pin_by_timestamps(item)
            return
        # An item from before the baseline that we meet for the first time.
        pin_moved = self.pin_by_timestamps(item)
        reindexed = later(item.indexed_at, self.since)
        if (
            self.exact
            and self.infer
            and not pin_moved
            and not reindexed
            and item.type == ItemType.AD
            and later(item.updated_at, self.since)
        ):
            self.status_event(item, item.status)
        self.remember(item, None, announced=True)

    @property
    def since(self) -> datetime | None:
        """The latest API time already accounted for: the watermark, else the baseline."""
        return self.state.watermark or self.state.baseline_at

    def pin_by_timestamps(self, item: Item) -> bool:
        previous = self.since
        if item.pinned and later(item.last_pinned_at, previous):
            self.emit(EventKind.PINNED, item, iso_or(item.last_pinned_at, self.obs.refresh))
            return True
        if item.pinned is False and later(item.last_unpinned_at, previous):
            self.emit(EventKind.UNPINNED, item, iso_or(item.last_unpinned_at, self.obs.refresh))
            return True
        return False

    def status_event(self, item: Item, status: ItemStatus | None) -> None:
        change = iso_or(item.updated_at, self.obs.refresh)
        days = item.days_running
        if status == ItemStatus.INACTIVE:
            self.emit(EventKind.AD_STOPPED, item, change, days_running=days)
        elif status == ItemStatus.ACTIVE:
            self.emit(EventKind.AD_RESUMED, item, change, days_running=days)

    def known_changed(self, item: Item, seen: Seen) -> None:
        moved = False
        if item.pinned is not None and seen.pinned is not None and item.pinned != seen.pinned:
            kind = EventKind.PINNED if item.pinned else EventKind.UNPINNED
            stamp = item.last_pinned_at if item.pinned else item.last_unpinned_at
            self.emit(kind, item, iso_or(stamp, self.obs.refresh))
            moved = True
        elif seen.pinned is None and self.pin_by_timestamps(item):
            moved = True
        is_ad = (item.type or seen.type) == ItemType.AD
        if item.status is not None and seen.status is not None and item.status != seen.status:
            moved = True
            if is_ad:
                self.status_event(item, item.status)
        reindexed = later(item.indexed_at, seen.updated_at)
        if not moved and not reindexed and later(item.updated_at, seen.updated_at):
            self.exact = False  # updatedAt moved for a reason we don't alert on
            self.moves = True
        self.follow(item, seen)

    def follow(self, item: Item, seen: Seen) -> None:
        """Update a remembered item; announce a followed one that crossed the filter."""
        if seen.announced or seen.follow_until is None:
            self.remember(item, seen)
            return
        if self.obs.at > seen.follow_until:
            self.remember(item, seen, announced=True, follow_until=None)
        elif self.rules.passes_metrics(item):
            self.announce_new(item)
            self.remember(item, seen, announced=True, follow_until=None)
        else:
            self.remember(item, seen)

    def milestones(self) -> None:
        """Announce each remembered active ad reaching a milestone (days running)."""
        if EventKind.AD_MILESTONE not in self.rules.events or not self.rules.milestones:
            return
        at = self.obs.at
        top = self.rules.milestones[-1]
        for item_id, seen in list(self.items.items()):
            if seen.milestone >= top or seen.started_at is None:
                continue
            if seen.type != ItemType.AD or seen.status != ItemStatus.ACTIVE or seen.outside:
                continue
            days = (at - seen.started_at) // DAY
            reached = [n for n in self.rules.milestones if seen.milestone < n <= days]
            if not reached:
                continue
            read = self.read.get(item_id)
            item = (
                replace(read, days_running=days)
                if read
                else Item(
                    id=item_id,
                    tiktok_id=seen.tiktok_id,
                    type=seen.type,
                    status=seen.status,
                    views=seen.views,
                    rank=seen.rank,
                    days_running=days,
                )
            )
            for n in reached:
                self.emit(
                    EventKind.AD_MILESTONE,
                    item,
                    f"{n}d",
                    milestone=n,
                    days_running=days,
                    views=item.views if item.views is not None else seen.views,
                )
            self.items[item_id] = replace(seen, milestone=reached[-1])
            self.touched.add(item_id)

    def rechecked(self, item: Item) -> None:
        seen = self.items.get(item.id)
        if seen is not None:
            self.known_changed(item, seen)

    def gone(self, item_id: str) -> None:
        seen = self.items.get(item_id)
        if seen is not None and not seen.announced:
            self.items[item_id] = replace(seen, announced=True, follow_until=None)
            self.touched.add(item_id)

    def tracked(self, items: Iterable[Item]) -> None:
        for item in items:
            if not self.rules.in_scope(item):
                continue  # e.g. a near-miss handle from the API's substring search
            seen = self.items.get(item.id)
            # The rank as observed before this poll: the change feed read just now may
            # already have stored today's rank, which would hide the climb.
            prior = self.state.items.get(item.id)
            before = prior.rank if prior else None
            after = item.rank
            if before is not None and after is not None and before - after >= self.rules.min_climb:
                self.emit(
                    EventKind.RANK_JUMP,
                    item,
                    f"{self.obs.refresh or ''}:{before}->{after}",
                    rank_before=before,
                    rank_after=after,
                    views=item.views,
                )
            if seen is None:
                self.remember(item, None, announced=True)
            else:
                self.remember(item, seen)


def detect(rules: Rules, state: WatchState, obs: Observation) -> Detection:
    """Compare one poll's observation with the watch's memory; return events and memory."""
    run = _Detector(rules, state, obs)
    # Known items first: they reveal an inexact updatedAt before any status is inferred
    # for the unknown ones read in the same poll.
    for item in obs.changed:
        if item.id in state.items:
            run.changed(item)
    for item in obs.rechecked:
        run.rechecked(item)
    for item in obs.changed:
        if item.id not in state.items:
            run.changed(item)
    for item_id in obs.gone:
        run.gone(item_id)
    if obs.tracked is not None:
        run.tracked(obs.tracked)
    for item_id, seen in list(run.items.items()):
        if not seen.announced and seen.follow_until and obs.at > seen.follow_until:
            run.items[item_id] = replace(seen, announced=True, follow_until=None)
            run.touched.add(item_id)
    run.milestones()
    _delist(run, obs.delisted)
    base = state.baseline_at
    if (
        run.moves is None
        and base is not None
        and obs.at - base > QUIET
        and any(i.updated_at is not None and i.updated_at < base for i in obs.changed)
    ):
        run.moves = False  # a row untouched by the daily metric updates since the baseline
    new_state = replace(
        state,
        watermark=latest(state.watermark, obs.watermark),
        refresh=obs.refresh or state.refresh,
        exact=run.exact,
        items=run.items,
        moves=run.moves,
        max_lag=run.max_lag,
    )
    return Detection(new_state, unique_events(run.events), frozenset(run.touched))


def _delist(run: _Detector, ids: Iterable[str]) -> None:
    """Items gone from the scope's order leave the stored order (their memory stays)."""
    for item_id in ids:
        seen = run.items.get(item_id)
        if seen is not None and seen.listed and item_id not in run.obs.listed:
            run.items[item_id] = replace(seen, listed=False)
            run.touched.add(item_id)


def baseline(
    rules: Rules,
    state: WatchState,
    obs: Observation,
    mode: FirstRun,
    *,
    summary: Mapping[str, object] | None = None,
    baseline_at: datetime | None = None,
) -> Detection:
    """A watch's first run: remember the baseline; alert per ``on_first_run``.

    ``obs.changed`` holds what the baseline read (for ``notify_all``: the newest items of
    the scope); ``obs.watermark`` the latest ``updatedAt`` in scope, which becomes both the
    baseline and the watermark (with no watermark, ``obs.at`` is the baseline). ``summary``
    holds the figures (counts read for free) of the one ``baseline`` event that the
    ``summary`` mode sends. ``baseline_at`` sets the baseline apart from the watermark,
    for a baseline scan that goes on over several polls (the watermark stays unset
    until it completes).
    """
    # With nothing dated read (empty scope, missing updatedAt) the poll's API time is the
    # baseline, so items that existed before the first run are never announced as new.
    start = replace(
        state,
        baseline_at=baseline_at or obs.watermark or obs.at,
        watermark=obs.watermark,
        has_baseline=True,
    )
    run = _Detector(rules, start, obs)
    for item in obs.changed:
        if item.id in run.items:
            continue
        if not rules.in_scope(item):
            if item.id in obs.listed:  # kept for the stored order, silently
                run.remember(item, None, announced=True, outside=True)
            continue
        if mode == FirstRun.NOTIFY_ALL and rules.passes_metrics(item):
            run.announce_new(item)
        run.remember(item, None, announced=True)
    if obs.tracked is not None:
        run.tracked(obs.tracked)
    events = list(run.events)
    if mode == FirstRun.SUMMARY:
        change = iso_or(obs.watermark, obs.refresh)
        events.append(
            Event(
                event_key(rules.watch, EventKind.BASELINE, "-", change),
                EventKind.BASELINE,
                rules.watch,
                obs.stamp,
                None,
                dict(summary or {}),
            )
        )
    new_state = replace(start, refresh=obs.refresh, items=run.items, max_lag=run.max_lag)
    return Detection(new_state, unique_events(events), frozenset(run.touched))
