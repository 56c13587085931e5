"""The state store on a real SQLite file and a real PostgreSQL server: schema, memory,
events, outbox, ledger, retention.

Also the crash guarantee: a process killed mid-poll leaves each poll fully applied or not
at all, so a re-run poll records nothing twice and nothing recorded is lost.
"""

from __future__ import annotations

import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

import watcher.store.database
from tests.store_helpers import episode_open, record_credits, resume
from watcher.detect import Detection, Seen, WatchState, event_key
from watcher.errors import StoreError
from watcher.models import Event, EventKind, Item, ItemStatus, ItemType
from watcher.store import SCHEMA_HEAD, PollRecord, Resume, Routes, Store
from watcher.store.queue import OutboxQueue
from watcher.store.urls import engine_url

T0 = datetime(2026, 4, 1, tzinfo=UTC)
ROUTES: Routes = {
    EventKind.NEW_AD: [("marketing", 2), ("ops", 1)],
    EventKind.AD_STOPPED: [("marketing", 2)],
    EventKind.WATCH_FAILING: [("ops", 1)],
}
TABLES = {
    "alembic_version",
    "watch",
    "item_seen",
    "poll",
    "event",
    "delivery",
    "credit_ledger",
    "ops_episode",
    "meta",
}


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def seen(item_id: str, **fields: Any) -> Seen:
    values: dict[str, Any] = {"first_seen": day(1), "last_seen": day(1), **fields}
    return Seen(item_id=item_id, **values)


def event(
    kind: EventKind, item_id: str, when: float = 1, *, watch: str = "acme", change: str = "c"
) -> Event:
    item = Item(
        id=item_id,
        tiktok_id="7078586231734521093",
        type=ItemType.AD,
        status=ItemStatus.ACTIVE,
        handle="acme",
        caption="<b>50% off</b> @channel",
        hashtags=("creatine", "gym"),
        updated_at=day(when),
        views=12_000,
    )
    return Event(
        event_key(watch, kind, item_id, change), kind, watch, day(when), item, {"views": 12_000}
    )


def detection(
    items: Sequence[Seen] = (),
    events: Sequence[Event] = (),
    *,
    watermark: float = 1,
    touched: Sequence[str] | None = None,
    **state: Any,
) -> Detection:
    memory = WatchState(
        baseline_at=day(0),
        watermark=day(watermark),
        refresh=day(watermark).date().isoformat(),
        has_baseline=True,
        items={s.item_id: s for s in items},
        **state,
    )
    names = [s.item_id for s in items] if touched is None else touched
    return Detection(memory, tuple(events), frozenset(names))


def poll(
    found: Detection | None = None,
    *,
    watch: str = "acme",
    at: float = 1,
    outcome: str | None = None,
    **fields: Any,
) -> PollRecord:
    default = "ok" if found is not None else "failed"
    return PollRecord(watch, day(at), 120, outcome or default, detection=found, **fields)


@pytest.fixture
def url(db_url: str) -> str:
    """A fresh database at the head, on SQLite and on PostgreSQL (``tests/conftest.py``)."""
    return db_url


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    opened = Store(url)
    yield opened
    opened.close()


def count(store: Store, table: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def delivery_count(store: Store) -> int:
    return count(store, "delivery")


# --- schema and connection ---------------------------------------------------------------


def test_opening_creates_every_table_and_the_alembic_version(tmp_path: Path) -> None:
    """A new database file gets the whole schema and alembic's version row."""
    path = tmp_path / "new.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        versions = raw.execute("SELECT version_num FROM alembic_version").fetchall()
    raw.close()
    assert names >= TABLES
    assert versions == [(SCHEMA_HEAD,)]


def test_reopening_migrates_nothing_and_keeps_the_data(store: Store, url: str) -> None:
    """Opening an up-to-date database again is a no-op: data kept, one version row."""
    store.apply_poll(poll(detection([seen("a")])), ROUTES)
    store.close()
    for _ in range(2):
        again = Store(url)
        assert set(again.memory.load("acme").items) == {"a"}
        assert count(again, "alembic_version") == 1
        again.close()


def test_a_database_from_a_newer_watcher_is_a_store_error(store: Store, url: str) -> None:
    """An unknown schema revision (a newer watcher wrote it) fails cleanly, as StoreError."""
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreError, match="migrate"):
        Store(url)


@pytest.mark.parametrize("engine", ["sqlite"])  # PostgreSQL has none of these knobs
def test_connections_use_wal_foreign_keys_and_a_busy_timeout(store: Store) -> None:
    """Every SQLite connection is tuned for the daemon: WAL, foreign keys, busy wait,
    NORMAL sync."""
    with store.engine.connect() as connection:
        pragma = {
            name: connection.execute(text(f"PRAGMA {name}")).scalar_one()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 10000,
        "synchronous": 1,
    }


def test_foreign_keys_are_enforced(store: Store) -> None:
    """An item remembered for a watch that doesn't exist is refused by the database."""
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO item_seen (watch, item_id, first_seen, last_seen, announced) "
                "VALUES ('ghost', 'x', '2026-04-01 00:00:00', '2026-04-01 00:00:00', TRUE)"
            )
        )


def test_repr_hides_the_password_of_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr(Store) shows where the database is, never its password."""
    real = watcher.store.database.create_engine

    def engine_without_driver(url: str, **kwargs: Any) -> Any:
        return real(url, module=sqlite3, **kwargs)  # no PostgreSQL driver needed to build it

    monkeypatch.setattr(watcher.store.database, "create_engine", engine_without_driver)
    shown = repr(Store("postgresql+pg8000://alice:s3cret@db.example/watcher", migrate=False))
    assert "s3cret" not in shown
    assert "alice" in shown
    assert "db.example/watcher" in shown


def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    """A path in a missing folder fails as StoreError, not a SQLAlchemy error."""
    with pytest.raises(StoreError, match="cannot open"):
        Store(f"sqlite:///{tmp_path / 'missing' / 'watcher.db'}")


def test_missing_database_driver_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL whose driver isn't installed fails as StoreError, not ImportError."""

    def no_driver(url: str, **kwargs: Any) -> Any:
        raise ModuleNotFoundError("No module named 'psycopg'")

    monkeypatch.setattr(watcher.store.database, "create_engine", no_driver)
    with pytest.raises(StoreError, match="psycopg"):
        Store("postgresql://alice:s3cret@db.example/watcher")


# --- memory ----------------------------------------------------------------------------------


def test_a_watch_never_polled_has_an_empty_memory(store: Store) -> None:
    """memory.load of an unknown watch is a fresh WatchState (no baseline yet)."""
    assert store.memory.load("nobody") == WatchState()
    assert resume(store, "nobody") == Resume()
    assert store.memory.watches() == []


def test_apply_poll_round_trips_the_watch_state(store: Store) -> None:
    """What apply_poll stored, memory.load returns equal, with aware UTC datetimes."""
    cest = timezone(timedelta(hours=2))
    items = [
        seen(
            "a",
            tiktok_id="7078586231734521093",
            type=ItemType.AD,
            status=ItemStatus.INACTIVE,
            pinned=True,
            rank=7,
            views=123_456,
            updated_at=datetime(2026, 4, 2, 14, 30, 5, 123456, tzinfo=cest),
            first_seen=day(0.5),
            last_seen=day(1.25),
        ),
        seen("b", type=ItemType.ORGANIC, announced=False, follow_until=day(8)),
        seen("c"),
    ]
    found = detection(items, watermark=3, exact=False)
    mark = datetime(2026, 4, 3, tzinfo=UTC)
    store.apply_poll(poll(found, resume=Resume(page=4, offset=96, mark=mark)), ROUTES)
    loaded = store.memory.load("acme")
    assert loaded == found.state
    stamps = [loaded.baseline_at, loaded.watermark, loaded.items["a"].updated_at]
    stamps += [loaded.items["b"].follow_until, loaded.items["a"].first_seen]
    assert all(s is not None and s.utcoffset() == timedelta(0) for s in stamps)
    assert loaded.items["a"].updated_at == datetime(2026, 4, 2, 12, 30, 5, 123456, tzinfo=UTC)
    assert loaded.items["c"].pinned is None
    assert resume(store, "acme") == Resume(page=4, offset=96, mark=mark)


def test_only_touched_items_are_written(store: Store) -> None:
    """The store upserts the items detection touched, not the whole memory."""
    store.apply_poll(poll(detection([seen("a"), seen("b")], touched=["a"])), ROUTES)
    assert set(store.memory.load("acme").items) == {"a"}


def test_upsert_updates_an_item_but_keeps_when_it_was_first_seen(store: Store) -> None:
    """A re-seen item gets its new fields; first_seen stays the first one stored."""
    store.apply_poll(poll(detection([seen("a", status=ItemStatus.ACTIVE)])), ROUTES)
    later = seen("a", status=ItemStatus.INACTIVE, first_seen=day(5), last_seen=day(5), pinned=False)
    store.apply_poll(poll(detection([later], watermark=5), at=5), ROUTES)
    stored = store.memory.load("acme").items["a"]
    assert stored == replace(later, first_seen=day(1))


def test_a_naive_datetime_is_refused(store: Store) -> None:
    """Naive datetimes never reach the database: the write fails as StoreError."""
    naive = seen("a", updated_at=datetime(2026, 4, 1, 12))  # noqa: DTZ001
    with pytest.raises(StoreError):
        store.apply_poll(poll(detection([naive])), ROUTES)
    assert store.memory.watches() == []


def test_memories_of_watches_are_separate(store: Store) -> None:
    """Two watches remembering the same item keep separate rows."""
    store.apply_poll(poll(detection([seen("a", rank=3)])), ROUTES)
    store.apply_poll(poll(detection([seen("a", rank=90)]), watch="other"), ROUTES)
    assert store.memory.load("acme").items["a"].rank == 3
    assert store.memory.load("other").items["a"].rank == 90


def test_forget_watch_drops_its_memory_but_not_its_events(store: Store) -> None:
    """After memory.forget the next poll is a first run; recorded events stay."""
    store.apply_poll(poll(detection([seen("a")], [event(EventKind.NEW_AD, "a")])), ROUTES)
    store.memory.forget("acme")
    assert store.memory.load("acme") == WatchState()
    assert [v.event.key for v in store.outbox.events()] == [event(EventKind.NEW_AD, "a").key]


# --- polls, failures and credits ------------------------------------------------------------


def test_poll_records_count_failures_until_a_success(store: Store) -> None:
    """Failed polls count up with their error and keep the memory; a success resets them."""
    store.apply_poll(poll(detection([seen("a")], watermark=2)), ROUTES)
    first = store.apply_poll(poll(at=3, error="API unavailable"), ROUTES)
    second = store.apply_poll(poll(at=4, error="rate limited"), ROUTES)
    assert second.poll_id == first.poll_id + 1
    (info,) = store.memory.watches()
    assert (info.consecutive_failures, info.last_error, info.last_outcome) == (
        2,
        "rate limited",
        "failed",
    )
    assert info.last_poll_at == day(4)
    assert store.memory.consecutive_failures("acme") == 2
    assert store.memory.load("acme").watermark == day(2)
    store.apply_poll(poll(detection([seen("a")], watermark=5), at=5), ROUTES)
    (info,) = store.memory.watches()
    assert (info.consecutive_failures, info.last_error, info.refresh) == (0, None, "2026-04-06")
    assert info.has_baseline
    assert count(store, "poll") == 4


def test_credits_are_summed_per_window_and_watch(store: Store) -> None:
    """credits_spent sums the ledger in [since, until), optionally for one watch."""
    store.apply_poll(poll(detection(), at=1, credits=10, remaining=990), ROUTES)
    store.apply_poll(poll(detection(), at=2, credits=5, remaining=985, watch="other"), ROUTES)
    store.apply_poll(poll(at=3, credits=2, remaining=983, error="timeout"), ROUTES)
    record_credits(store, day(4), 0, 983)
    assert store.ledger.spent(since=day(0)) == 17
    assert store.ledger.spent(since=day(2)) == 7
    assert store.ledger.spent(since=day(1), until=day(3)) == 15
    assert store.ledger.spent(since=day(0), watch="acme") == 12
    assert store.ledger.spent(since=day(9)) == 0


def test_last_balance_is_the_latest_reported(store: Store) -> None:
    """last_balance is the balance last reported, skipping rows without one."""
    assert store.ledger.last_balance() is None
    store.apply_poll(poll(detection(), credits=10, remaining=990), ROUTES)
    store.apply_poll(poll(detection(), at=2, credits=3), ROUTES)
    assert store.ledger.last_balance() == 990
    record_credits(store, day(3), 0, 500)
    assert store.ledger.last_balance() == 500


def test_a_free_poll_adds_no_ledger_row(store: Store) -> None:
    """A poll that spent nothing and saw no balance leaves the ledger alone."""
    store.apply_poll(poll(detection()), ROUTES)
    assert count(store, "credit_ledger") == 0


# --- events and the outbox -----------------------------------------------------------------


def test_applying_a_detection_twice_records_each_event_and_delivery_once(store: Store) -> None:
    """Re-running a poll (after a crash) adds no event and no outbox row."""
    found = detection(
        [seen("a"), seen("b")],
        [event(EventKind.NEW_AD, "a"), event(EventKind.AD_STOPPED, "b")],
    )
    first = store.apply_poll(poll(found), ROUTES)
    second = store.apply_poll(poll(found, at=1.1), ROUTES)
    assert [e.key for e in first.new_events] == [e.key for e in found.events]
    assert second.new_events == ()
    assert count(store, "event") == 2
    assert delivery_count(store) == 3 + 2
    views = {v.event.kind: v.deliveries for v in store.outbox.events()}
    assert [(d.notifier, d.url_index) for d in views[EventKind.NEW_AD]] == [
        ("marketing", 0),
        ("marketing", 1),
        ("ops", 0),
    ]
    assert [(d.notifier, d.url_index) for d in views[EventKind.AD_STOPPED]] == [
        ("marketing", 0),
        ("marketing", 1),
    ]


def test_an_event_with_no_route_is_recorded_without_deliveries(store: Store) -> None:
    """A kind nobody is routed to is still recorded, with an empty outbox."""
    store.apply_poll(poll(detection([seen("a")], [event(EventKind.PINNED, "a")])), ROUTES)
    (view,) = store.outbox.events()
    assert view.event.kind == EventKind.PINNED
    assert view.deliveries == ()
    assert store.outbox.depth() == 0


def test_events_round_trip_with_their_item_snapshot(store: Store) -> None:
    """A stored event comes back equal: kind, watch, time, figures and the item snapshot."""
    original = event(EventKind.NEW_AD, "a")
    store.apply_poll(poll(detection([seen("a")], [original])), ROUTES)
    (view,) = store.outbox.events()
    assert view.event == original
    due = store.outbox.due(day(1))
    assert len(due) == 3
    assert all(d.event == original for d in due)


def test_events_are_listed_newest_first_and_filtered(store: Store) -> None:
    """events() lists newest first; ``watch`` and ``since`` narrow it; ``limit`` caps it."""
    for n in range(1, 4):
        found = detection([], [event(EventKind.PINNED, f"i{n}", n)], watermark=n)
        store.apply_poll(poll(found, at=n), ROUTES)
    ops = event(EventKind.WATCH_FAILING, "x", 4, watch="other")
    store.outbox.record(replace(ops, item=None), ROUTES)
    assert [v.event.watch for v in store.outbox.events()] == ["other", "acme", "acme", "acme"]
    assert [v.event.item.id for v in store.outbox.events(watch="acme") if v.event.item] == [
        "i3",
        "i2",
        "i1",
    ]
    assert len(store.outbox.events(since=day(2))) == 3
    assert len(store.outbox.events(limit=2)) == 2
    ids = [v.id for v in store.outbox.events()]
    assert ids == sorted(ids, reverse=True)


def test_record_event_records_an_ops_event_once(store: Store) -> None:
    """An ops event outside a poll is recorded once, with its outbox rows."""
    ops = Event("ops|watch_failing|acme|t", EventKind.WATCH_FAILING, "acme", day(1))
    assert store.outbox.record(ops, ROUTES)
    assert not store.outbox.record(ops, ROUTES)
    (due,) = store.outbox.due(day(1))
    assert (due.notifier, due.poll_id, due.event.item) == ("ops", None, None)


def test_due_deliveries_are_pending_rows_due_oldest_event_first(store: Store) -> None:
    """Only pending rows whose time has come are due, oldest event first, up to ``limit``."""
    late = detection([seen("b")], [event(EventKind.AD_STOPPED, "b", 2)], watermark=2)
    early = detection([seen("a")], [event(EventKind.NEW_AD, "a", 1)])
    store.apply_poll(poll(early), ROUTES)
    store.apply_poll(poll(late, at=2), ROUTES)
    assert store.outbox.due(day(0.5)) == []
    assert [d.event.kind for d in store.outbox.due(day(1))] == [EventKind.NEW_AD] * 3
    due = store.outbox.due(day(2))
    assert [d.event.kind for d in due] == [EventKind.NEW_AD] * 3 + [EventKind.AD_STOPPED] * 2
    assert [d.event_id for d in due] == sorted(d.event_id for d in due)
    assert len(store.outbox.due(day(2), limit=2)) == 2
    assert all(d.attempts == 0 and d.poll_id is not None for d in due)


def test_mark_sent_and_mark_failed_move_deliveries(store: Store) -> None:
    """Sent rows leave the outbox; failed ones retry later; dead ones never come back."""
    store.apply_poll(poll(detection([seen("a")], [event(EventKind.NEW_AD, "a")])), ROUTES)
    first, second, third = store.outbox.due(day(1))
    assert store.outbox.depth() == 3
    store.outbox.mark_sent([first.id], day(1))
    store.outbox.mark_failed([second.id], "HTTP 500 " + "x" * 600, day(1.5), dead=False)
    store.outbox.mark_failed([third.id], "HTTP 404", day(1.5), dead=True)
    assert store.outbox.depth() == 1
    assert store.outbox.due(day(1.4)) == []
    (retry,) = store.outbox.due(day(1.5))
    assert (retry.id, retry.attempts) == (second.id, 1)
    (view,) = store.outbox.events()
    states = {(d.notifier, d.url_index): (d.state, d.attempts) for d in view.deliveries}
    assert states == {
        ("marketing", 0): ("sent", 1),
        ("marketing", 1): ("pending", 1),
        ("ops", 0): ("dead", 1),
    }
    errors = {d.state: d.last_error for d in view.deliveries}
    assert errors["sent"] is None
    assert errors["pending"] is not None
    assert len(errors["pending"]) == 500
    assert errors["dead"] == "HTTP 404"
    store.outbox.mark_failed([second.id], "HTTP 500", day(2), dead=True)
    assert store.outbox.depth() == 0
    assert store.outbox.due(day(9)) == []


# --- episodes and meta --------------------------------------------------------------------


def test_an_episode_opens_once_and_closes_once(store: Store) -> None:
    """open_episode is True only when it opens; close_episode only when it was open."""
    kind = EventKind.WATCH_FAILING
    assert not episode_open(store, kind, "acme")
    assert store.episodes.open(kind, "acme", day(1))
    assert not store.episodes.open(kind, "acme", day(2))
    assert store.episodes.open(kind, "other", day(2))
    assert episode_open(store, kind, "acme")
    assert store.episodes.close(kind, "acme")
    assert not store.episodes.close(kind, "acme")
    assert not episode_open(store, kind, "acme")
    assert episode_open(store, kind, "other")
    assert store.episodes.open(kind, "acme", day(3))


def test_meta_values_are_set_and_overwritten(store: Store) -> None:
    """set_meta upserts a small fact; get_meta reads it back, None when unknown."""
    assert store.meta.get("updated_after") is None
    store.meta.set("updated_after", "1")
    store.meta.set("updated_after", "0")
    assert store.meta.get("updated_after") == "0"


# --- retention ----------------------------------------------------------------------------


def test_mark_removed_notes_when_a_watch_left_the_config(store: Store) -> None:
    """Watches missing from the config get removed_at once; back in the config, cleared."""
    for name in ("acme", "gone"):
        store.apply_poll(poll(detection([seen("a")]), watch=name), ROUTES)
    store.memory.mark_removed(["acme"], day(2))
    store.memory.mark_removed(["acme"], day(3))
    removed = {w.name: w.removed_at for w in store.memory.watches()}
    assert removed == {"acme": None, "gone": day(2)}
    store.memory.mark_removed(["acme", "gone"], day(4))
    assert all(w.removed_at is None for w in store.memory.watches())
    store.memory.mark_removed([], day(5))
    assert all(w.removed_at == day(5) for w in store.memory.watches())
    store.apply_poll(poll(at=6, error="x"), ROUTES)
    assert {w.name: w.removed_at for w in store.memory.watches()}["acme"] is None


def test_prune_drops_old_history_but_never_undelivered_events(store: Store) -> None:
    """Old polls, ledger rows and delivered/dead events go; pending ones and new ones stay."""
    sent, pending, dead = (event(EventKind.NEW_AD, n, 1) for n in ("sent", "pending", "dead"))
    quiet = event(EventKind.PINNED, "quiet", 1)
    store.apply_poll(
        poll(detection([seen("a")], [sent, pending, dead, quiet]), credits=4, remaining=9),
        ROUTES,
    )
    recent = event(EventKind.NEW_AD, "recent", 30)
    store.apply_poll(
        poll(detection([], [recent], watermark=30), at=30, credits=1, remaining=8), ROUTES
    )
    ids: dict[str, list[int]] = {}
    for d in store.outbox.due(day(30)):
        ids.setdefault(d.event.key, []).append(d.id)
    store.outbox.mark_sent(ids[sent.key], day(1))
    store.outbox.mark_failed(ids[dead.key], "gone", day(1), dead=True)
    store.outbox.mark_sent(ids[pending.key][:1], day(1))

    removed = store.prune(day(31), retention=timedelta(days=10), grace=timedelta(days=30))

    kept = {v.event.key for v in store.outbox.events()}
    assert kept == {pending.key, recent.key}
    assert count(store, "poll") == 1
    assert count(store, "credit_ledger") == 1
    assert store.ledger.spent(since=day(0)) == 1
    assert delivery_count(store) == 3 + 3
    assert removed == 1 + 1 + 3
    assert store.prune(day(31), retention=timedelta(days=10), grace=timedelta(days=30)) == 0


def test_prune_forgets_removed_watches_only_after_the_grace_period(store: Store) -> None:
    """A removed watch keeps its memory through the grace period (it may come back)."""
    store.apply_poll(poll(detection([seen("a"), seen("b")])), ROUTES)
    store.apply_poll(poll(detection([seen("a")]), watch="kept"), ROUTES)
    store.memory.mark_removed(["kept"], day(2))
    grace = timedelta(days=30)
    store.prune(day(31), retention=timedelta(days=365), grace=grace)
    assert set(store.memory.load("acme").items) == {"a", "b"}
    removed = store.prune(day(33), retention=timedelta(days=365), grace=grace)
    assert removed == 2
    assert store.memory.load("acme") == WatchState()
    assert [w.name for w in store.memory.watches()] == ["kept"]
    assert set(store.memory.load("kept").items) == {"a"}


# --- atomicity ------------------------------------------------------------------------------


def test_a_poll_failing_midway_stores_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the transaction fails after the items were written, none of the poll is kept."""
    store.apply_poll(poll(detection([seen("a", rank=1)])), ROUTES)
    before = store.memory.load("acme")

    def broken(*args: object, **kwargs: object) -> tuple[Event, ...]:
        raise OperationalError("INSERT INTO event", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(OutboxQueue, "queue", broken)
    found = detection([seen("a", rank=50), seen("b")], [event(EventKind.NEW_AD, "b")], watermark=5)
    with pytest.raises(StoreError, match="disk I/O error"):
        store.apply_poll(poll(found, at=5, credits=7, remaining=1), ROUTES)
    assert store.memory.load("acme") == before
    assert (count(store, "poll"), count(store, "event"), count(store, "credit_ledger")) == (1, 0, 0)
    assert store.memory.watches()[0].last_poll_at == day(1)


def test_a_bad_event_rolls_back_the_whole_poll(store: Store) -> None:
    """An event that can't be stored (naive time) rolls back the items written before it."""
    bad = replace(event(EventKind.NEW_AD, "b"), detected_at=datetime(2026, 4, 5))  # noqa: DTZ001
    found = detection([seen("a"), seen("b")], [event(EventKind.AD_STOPPED, "a"), bad])
    with pytest.raises(StoreError):
        store.apply_poll(poll(found, credits=3), ROUTES)
    assert store.memory.watches() == []
    assert store.memory.load("acme") == WatchState()
    for table in ("poll", "event", "delivery", "credit_ledger", "item_seen"):
        assert count(store, table) == 0, table


# --- crash safety ---------------------------------------------------------------------------

CHILD = """
import sys
from datetime import UTC, datetime, timedelta
from watcher.detect import Detection, Seen, WatchState
from watcher.models import Event, EventKind, Item
from watcher.store import PollRecord, Store

store = Store(sys.argv[1])
t0 = datetime(2026, 4, 1, tzinfo=UTC)
routes = {EventKind.NEW_AD: [("marketing", 2)]}
n = len(store.memory.load("acme").items)
while True:
    at = t0 + timedelta(minutes=n)
    seen = Seen(f"i{n}", at, at, updated_at=at)
    state = WatchState(t0, at, str(n), True, True, {seen.item_id: seen})
    ev = Event(f"e{n}", EventKind.NEW_AD, "acme", at, Item(f"i{n}"), {"n": n})
    found = Detection(state, (ev,), frozenset({seen.item_id}))
    store.apply_poll(PollRecord("acme", at, 1, "ok", credits=1, detection=found), routes)
    print(n, flush=True)
    n += 1
"""


def wait_for_progress(proc: subprocess.Popen[bytes], at_least: int, deadline: float) -> int:
    """Block until the child reports ``at_least`` committed polls; fail past ``deadline``."""
    assert proc.stdout is not None
    reported = 0
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while reported < at_least:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"child reported {reported} polls, waited for {at_least}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                stderr = proc.stderr.read() if proc.stderr else b""
                pytest.fail(f"child exited {proc.wait()}: {stderr.decode()}")
            reported += chunk.count(b"\n")
    return reported


def assert_whole_polls(url: str, printed: int) -> int:
    """Every stored poll is complete (memory, event, outbox rows, ledger); returns how many.

    The child prints after each commit, so at most one poll is stored but unreported.
    """
    store = Store(url)
    try:
        polls = count(store, "poll")
        assert printed <= polls <= printed + 1
        state = store.memory.load("acme")
        assert set(state.items) == {f"i{n}" for n in range(polls)}
        assert [v.event.key for v in store.outbox.events(limit=10_000)] == [
            f"e{n}" for n in reversed(range(polls))
        ]
        assert delivery_count(store) == 2 * polls
        assert store.ledger.spent(since=T0) == polls
        if polls:
            assert state.watermark == T0 + timedelta(minutes=polls - 1)
            assert state.refresh == str(polls - 1)
        return polls
    finally:
        store.close()


def test_a_killed_process_leaves_every_poll_whole(new_db_url: Callable[[], str]) -> None:
    """SIGKILL at any point: each poll is fully stored or absent; the next run resumes."""
    kill_after = (2, 20)
    urls = [new_db_url() for _ in kill_after]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).parent.parent,
        )
        for url in urls
    ]
    deadline = time.monotonic() + 60
    try:
        for child, url, threshold in zip(children, urls, kill_after, strict=True):
            reported = wait_for_progress(child, threshold, deadline)
            child.send_signal(signal.SIGKILL)
            rest, _err = child.communicate()
            assert child.returncode == -signal.SIGKILL
            polls = assert_whole_polls(url, reported + rest.count(b"\n"))
            # The next poll, as a restarted daemon would run it, applies cleanly on top.
            store = Store(url)
            at = T0 + timedelta(minutes=polls)
            found = Detection(
                WatchState(T0, at, str(polls), True, True, {"next": seen("next")}),
                (Event(f"e{polls}", EventKind.NEW_AD, "acme", at),),
                frozenset({"next"}),
            )
            applied = store.apply_poll(PollRecord("acme", at, 1, "ok", detection=found), {})
            assert len(applied.new_events) == 1
            store.close()
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()


def test_schema_head_constant_matches_the_latest_migration() -> None:
    """SCHEMA_HEAD (which lets a current database skip alembic) names the real head."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("watcher.store") / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


def test_reopening_a_current_database_reports_its_version(empty_db_url: str) -> None:
    """A migrated database reports the head revision, a new one none."""
    fresh = Store(empty_db_url, migrate=False)
    assert fresh.schema_version() is None
    fresh.close()
    store = Store(empty_db_url)
    assert store.schema_version() == SCHEMA_HEAD
    store.close()


def test_a_database_at_the_first_schema_upgrades_keeping_its_data(empty_db_url: str) -> None:
    """A 0001 database (the first release) migrates to the head on open, rows intact."""
    url = empty_db_url
    engine = create_engine(engine_url(url))
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("watcher.store") / "migrations"))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0001")
        connection.exec_driver_sql(
            "INSERT INTO watch (name, fingerprint, has_baseline, refresh, exact,"
            " consecutive_failures) VALUES ('old', 'f', TRUE, '2026-04-01', TRUE, 0)"
        )
    engine.dispose()
    store = Store(url)
    assert store.schema_version() == SCHEMA_HEAD
    assert [w.name for w in store.memory.watches()] == ["old"]
    assert store.memory.load("old").refresh == "2026-04-01"
    assert resume(store, "old") == Resume()
    store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_read_only_store_on_postgresql_reads_and_never_writes(store: Store, url: str) -> None:
    """``watcher status`` and ``events`` open PostgreSQL in read-only transactions."""
    store.apply_poll(poll(detection([seen("a")])), ROUTES)
    reader = Store(url, read_only=True)
    try:
        assert set(reader.memory.load("acme").items) == {"a"}
        with pytest.raises(StoreError, match="read-only"):
            reader.meta.set("k", "v")
    finally:
        reader.close()


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_postgresql_database_without_the_schema_says_so(empty_db_url: str) -> None:
    reader = Store(empty_db_url, read_only=True)
    try:
        with pytest.raises(StoreError, match="no watcher schema"):
            reader.meta.get("k")
    finally:
        reader.close()


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgresql"])
def test_times_are_the_same_instants_whatever_the_sessions_time_zone(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """timestamptz gets aware UTC values: a session in Tokyo stores and reads the same
    instants as one in UTC (a naive value would be read in the session's zone)."""
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")  # libpq sets the session's TimeZone from it
    tokyo = Store(url)
    try:
        with tokyo.engine.connect() as connection:
            assert connection.execute(text("SHOW TimeZone")).scalar_one() == "Asia/Tokyo"
        tokyo.apply_poll(poll(detection([seen("a")], [event(EventKind.NEW_AD, "a")])), ROUTES)
        assert tokyo.memory.load("acme").watermark == day(1)
    finally:
        tokyo.close()
    monkeypatch.setenv("PGTZ", "UTC")
    utc = Store(url)
    try:
        [view] = utc.outbox.events()
        assert view.event.detected_at == day(1)
        assert utc.memory.load("acme").items["a"].first_seen == day(1)
        with utc.engine.connect() as connection:
            raw = connection.execute(text("SELECT detected_at::text FROM event")).scalar_one()
        assert raw == "2026-04-02 00:00:00+00"
    finally:
        utc.close()
