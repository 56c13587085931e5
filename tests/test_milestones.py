"""ad_milestone: an active ad reaching N days running, once per ad and milestone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from watcher.detect import FirstRun, Observation, Rules, WatchState, baseline, detect
from watcher.models import Event, EventKind, Item, ItemStatus, ItemType
from watcher.store import Store

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
RULES = Rules(
    watch="w",
    events=frozenset({EventKind.NEW_AD, EventKind.AD_MILESTONE, EventKind.AD_STOPPED}),
    milestones=(7, 14, 30),
)


def ad(n: int, *, days: int | None = None, published: datetime | None = None, **kw: object) -> Item:
    return Item(
        id=f"i{n}",
        tiktok_id=str(7000 + n),
        type=ItemType.AD,
        status=kw.pop("status", ItemStatus.ACTIVE),  # type: ignore[arg-type]
        created_at=T0 + timedelta(hours=1),
        updated_at=T0 + timedelta(hours=1),
        days_running=days,
        published_at=published,
        handle="rival",
    )


def start() -> WatchState:
    return baseline(RULES, WatchState(), Observation(at=T0, refresh="d0"), FirstRun.SILENT).state


def poll(
    state: WatchState, day: int, changed: tuple[Item, ...] = ()
) -> tuple[WatchState, list[Event]]:
    obs = Observation(at=T0 + day * DAY, refresh=f"d{day}", changed=changed)
    result = detect(RULES, state, obs)
    return result.state, [e for e in result.events if e.kind == EventKind.AD_MILESTONE]


def test_milestones_fire_once_each_from_memory() -> None:
    """A new ad is announced at 7, 14 and 30 days from memory alone, each exactly once."""
    state, _ = poll(start(), 1, (ad(1, days=0),))
    fired: list[int] = []
    for day in range(2, 40):
        state, events = poll(state, day)  # nothing read: memory only
        fired += [int(e.figures["milestone"]) for e in events]
    assert fired == [7, 14, 30]


def test_milestone_figures_and_key() -> None:
    """The event carries days running and views, and a key per ad and milestone."""
    state, _ = poll(start(), 1, (replace(ad(1, days=0), views=5000),))
    state, events = poll(state, 8)
    [event] = events
    assert event.figures["days_running"] == 7
    assert event.figures["views"] == 5000
    assert event.key == "w|ad_milestone|i1|7d"


def test_published_at_counts_when_days_running_is_missing() -> None:
    """Without daysRunning, days since publishedAt (API clock) count."""
    state, _ = poll(start(), 1, (ad(1, published=T0 - 5 * DAY),))
    state, early = poll(state, 1)
    state, events = poll(state, 2)
    assert early == []
    assert [e.figures["milestone"] for e in events] == [7]


def test_a_stopped_ad_never_reaches_its_milestone() -> None:
    """An ad that stops before N days is no winner."""
    state, _ = poll(start(), 1, (ad(1, days=0),))
    state, _ = poll(state, 3, (replace(ad(1, days=2), status=ItemStatus.INACTIVE),))
    for day in range(4, 40):
        state, events = poll(state, day)
        assert events == []


def test_milestones_passed_before_first_meeting_are_not_news() -> None:
    """An ad first met at 20 days running announces 30 only."""
    state, _ = poll(start(), 1, (ad(1, days=20),))
    fired: list[object] = []
    for day in range(2, 20):
        state, events = poll(state, day)
        fired += [e.figures["milestone"] for e in events]
    assert fired == [30]


def test_milestones_need_opting_in() -> None:
    """A watch without ad_milestone in its events gets none."""
    rules = replace(RULES, events=frozenset({EventKind.NEW_AD}))
    state = detect(
        rules, start(), Observation(at=T0 + DAY, refresh="d1", changed=(ad(1, days=0),))
    ).state
    result = detect(rules, state, Observation(at=T0 + 10 * DAY, refresh="d10"))
    assert result.events == ()


def test_a_milestone_borrows_handle_and_caption_from_the_items_last_event(db_url: str) -> None:
    """An alert built from memory still names the handle and caption (from the store), on
    SQLite and PostgreSQL (the item snapshot is JSON on both)."""
    store = Store(db_url)
    try:
        full = replace(ad(1, days=0), caption="gummies drop", views=10)
        store.outbox.record(Event("w|new_ad|i1|new", EventKind.NEW_AD, "w", T0, full), {})
        bare = Item(id="i1", tiktok_id="7001", type=ItemType.AD, views=99, days_running=7)
        milestone = Event("w|ad_milestone|i1|7d", EventKind.AD_MILESTONE, "w", T0, bare)
        store.outbox.record(milestone, {})
        [latest, _] = store.outbox.events()
    finally:
        store.close()
    assert latest.event.item is not None
    assert latest.event.item.handle == "rival"
    assert latest.event.item.caption == "gummies drop"
    assert latest.event.item.views == 99
    assert latest.event.item.days_running == 7
