"""`watcher events` and `watcher status`: read from a real SQLite file, never an URL shown."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from watcher.cli import cli
from watcher.config import Settings, load_settings
from watcher.detect import Detection, WatchState
from watcher.models import Event, EventKind, Item, ItemType, ops_event
from watcher.schedule import Schedule
from watcher.status import (
    build_status,
    delivery_summary,
    format_figures,
    format_status,
    next_poll,
    status_json,
)
from watcher.store import DeliveryView, PollRecord, Store
from watcher.store.leases import OUTBOX, Leases, replica_lease, watch_lease

SLACK = "slack://T000/B000/XXXXSECRET/#competitors"
TELEGRAM = "tgram://123456:bottokenSECRET/ChatID"
EVENT_KEYS = {
    "id",
    "watch",
    "kind",
    "item_id",
    "tiktok_id",
    "detected_at",
    "figures",
    "deliveries",
}
DELIVERY_KEYS = {"notifier", "url_index", "state", "attempts"}
ROUTES = {
    kind: [("marketing", 2)] for kind in (EventKind.NEW_AD, EventKind.RANK_JUMP, EventKind.PINNED)
}

CONFIG = f"""\
version: 1
api:
  base_url: http://127.0.0.1:9
state:
  database: {{database}}
timezone: Europe/Paris
notifiers:
  marketing:
    urls: ["{SLACK}", "{TELEGRAM}"]
defaults:
  notify: [marketing]
watches:
  - name: acme-shop
    shop: 3f8aa146-6f96-46e8-9781-64db5166f9a8
    every: 1h
  - name: skincare
    search: ["skincare"]
    cron: "0 9 * * *"
  - name: paused-one
    hashtag: creatine
    enabled: false
"""


def _item(n: int) -> Item:
    return Item(id=f"item-{n}", tiktok_id=f"70785862317345210{n:02d}", type=ItemType.AD)


def _event(watch: str, kind: EventKind, n: int, at: datetime, **figures: object) -> Event:
    return Event(f"{watch}|{kind.value}|item-{n}|x", kind, watch, at, _item(n), dict(figures))


def _poll(
    store: Store,
    watch: str,
    at: datetime,
    events: tuple[Event, ...] = (),
    *,
    credits: int = 0,
    remaining: int | None = None,
    outcome: str = "ok",
    error: str | None = None,
) -> None:
    detection = None
    if outcome != "failed":
        state = WatchState(baseline_at=at, watermark=at, has_baseline=True)
        detection = Detection(state, events, frozenset())
    record = PollRecord(
        watch=watch,
        started_at=at,
        duration_ms=120,
        outcome=outcome,
        credits=credits,
        remaining=remaining,
        error=error,
        detection=detection,
    )
    store.apply_poll(record, ROUTES)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    """The config, its state on SQLite and on PostgreSQL."""
    path = tmp_path / "watches.yaml"
    path.write_text(CONFIG.format(database=db_url))
    return path


@pytest.fixture
def settings(config: Path) -> Settings:
    return load_settings(config, {})


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(settings: Settings, now: datetime) -> Iterator[Store]:
    """A database with events in three watches, deliveries in every state, credits."""
    db = Store(settings.state.database)
    _poll(
        db,
        "acme-shop",
        now - timedelta(days=3),
        (_event("acme-shop", EventKind.NEW_AD, 1, now - timedelta(days=3)),),
        credits=5,
    )
    _poll(
        db,
        "acme-shop",
        now - timedelta(minutes=20),
        (
            _event("acme-shop", EventKind.NEW_AD, 2, now - timedelta(minutes=20), views=12000),
            _event(
                "acme-shop",
                EventKind.RANK_JUMP,
                3,
                now - timedelta(minutes=20),
                rank_before=48,
                rank_after=7,
            ),
        ),
        credits=12,
        remaining=9000,
    )
    _poll(
        db,
        "skincare",
        now - timedelta(minutes=10),
        (_event("skincare", EventKind.PINNED, 4, now - timedelta(minutes=10)),),
        credits=3,
        remaining=8997,
    )
    _poll(db, "gone-watch", now - timedelta(hours=2), outcome="failed", error=f"boom {SLACK}")
    db.outbox.record(
        ops_event(EventKind.WATCH_FAILING, "gone-watch", now - timedelta(hours=2), {"failures": 3}),
        {},
    )
    due = db.outbox.due(now)
    first_poll = [d for d in due if d.event.key.endswith("item-2|x")]
    db.outbox.mark_sent([d.id for d in first_poll if d.url_index == 0], now)
    db.outbox.mark_failed(
        [d.id for d in first_poll if d.url_index == 1], f"HTTP 500 from {TELEGRAM}", now, dead=False
    )
    yield db
    db.close()


def _invoke(config: Path, *args: str) -> tuple[int, str]:
    env = {"TRENDTRACK_API_KEY": None, "WATCHER_DB": None, "WATCHER_CONFIG": None}
    result = CliRunner().invoke(cli, ["-c", str(config), *args], env=env)
    return result.exit_code, result.stdout + result.stderr


def _assert_no_url(text: str) -> None:
    for secret in ("XXXXSECRET", "bottokenSECRET", "T000/B000", "123456:"):
        assert secret not in text
    assert re.findall(r"://[^\s\"]*", text) in ([], ["://***"]), text


def test_events_json_lines_have_exactly_the_spec_keys(config: Path, store: Store) -> None:
    """`events --json` prints one JSON object a line with the product spec's keys."""
    code, out = _invoke(config, "events", "--json")
    assert code == 0, out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines
    for entry in lines:
        assert set(entry) == EVENT_KEYS
        for delivery in entry["deliveries"]:
            assert set(delivery) == DELIVERY_KEYS
    datetime.fromisoformat(lines[0]["detected_at"])


def test_events_are_newest_first_within_since(config: Path, store: Store) -> None:
    """The default 24h window drops the 3-day-old event; the newest event comes first."""
    code, out = _invoke(config, "events", "--json")
    assert code == 0, out
    kinds = [(e["watch"], e["kind"]) for e in map(json.loads, out.splitlines())]
    assert kinds[0] == ("skincare", "pinned")
    assert ("gone-watch", "watch_failing") in kinds
    assert len(kinds) == 4
    code, out = _invoke(config, "events", "--json", "--since", "7d")
    assert len(out.splitlines()) == 5


def test_events_json_carries_delivery_state_per_url(config: Path, store: Store) -> None:
    """Each delivery names notifier, URL position, state and attempts; figures are kept."""
    _, out = _invoke(config, "events", "--json", "--watch", "acme-shop")
    entries = [json.loads(line) for line in out.splitlines()]
    new_ad = next(e for e in entries if e["kind"] == "new_ad")
    assert new_ad["item_id"] == "item-2"
    assert new_ad["tiktok_id"] == "7078586231734521002"
    assert new_ad["figures"] == {"views": 12000}
    assert new_ad["deliveries"] == [
        {"notifier": "marketing", "url_index": 0, "state": "sent", "attempts": 1},
        {"notifier": "marketing", "url_index": 1, "state": "pending", "attempts": 1},
    ]
    assert {e["watch"] for e in entries} == {"acme-shop"}


def test_events_table_summarises_deliveries_without_urls(config: Path, store: Store) -> None:
    """The human table shows `marketing[0] sent, marketing[1] pending(1)` and no URL."""
    code, out = _invoke(config, "events")
    assert code == 0, out
    assert "marketing[0] sent, marketing[1] pending(1)" in out
    assert "rank 48→7" in out
    assert "7078586231734521002" in out
    assert out.splitlines()[0].split()[:3] == ["TIME", "WATCH", "KIND"]
    _assert_no_url(out)


def test_events_with_nothing_to_show_says_so(config: Path, store: Store) -> None:
    """A window with no events prints a line saying so (and nothing for --json)."""
    _, out = _invoke(config, "events", "--watch", "nobody")
    assert "no events of watch 'nobody' in the last 24h" in out
    _, out = _invoke(config, "events", "--watch", "nobody", "--json")
    assert out == ""


def test_events_rejects_a_bad_since(config: Path, store: Store) -> None:
    """`--since yesterday` is a usage error (exit 2) that explains durations."""
    code, out = _invoke(config, "events", "--since", "yesterday")
    assert code == 2
    assert "bad duration" in out


def test_status_json_is_one_object_with_every_watch(config: Path, store: Store) -> None:
    """`status --json` prints one object: watches (configured, then removed) and totals."""
    code, out = _invoke(config, "status", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert set(report) == {
        "watches",
        "balance",
        "credits_today",
        "credits_month",
        "outbox_pending",
        "replicas",
    }
    assert report["replicas"] == []
    by_name = {w["name"]: w for w in report["watches"]}
    assert list(by_name) == ["acme-shop", "skincare", "paused-one", "gone-watch"]
    assert report["balance"] == 8997
    assert report["outbox_pending"] > 0
    acme = by_name["acme-shop"]
    assert acme["outcome"] == "ok"
    assert acme["consecutive_failures"] == 0
    last = datetime.fromisoformat(acme["last_poll"])
    assert datetime.fromisoformat(acme["next_poll"]) == last + timedelta(hours=1)
    assert by_name["paused-one"]["next_poll"] == "disabled"
    assert by_name["paused-one"]["last_poll"] is None
    gone = by_name["gone-watch"]
    assert gone["removed"] is True
    assert gone["next_poll"] == "removed"
    assert gone["consecutive_failures"] == 1
    _assert_no_url(out)


def test_status_table_marks_removed_watches_and_hides_urls(config: Path, store: Store) -> None:
    """The human status names each watch, marks removed ones, and redacts errors."""
    code, out = _invoke(config, "status")
    assert code == 0, out
    assert "gone-watch (removed)" in out
    assert "last error: boom" in out
    assert "balance last seen: 8,997" in out
    assert "never polled" in out
    _assert_no_url(out)


def test_status_works_without_an_api_key_or_database(tmp_path: Path) -> None:
    """A fresh install without API key: status shows watches never polled, balance unseen."""
    path = tmp_path / "watches.yaml"
    path.write_text(CONFIG.format(database=f"sqlite:///{tmp_path / 'new.db'}"))
    code, out = _invoke(path, "status", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["balance"] is None
    assert report["credits_month"] == 0
    by_name = {w["name"]: w["next_poll"] for w in report["watches"]}
    assert by_name["acme-shop"] == "soon"
    assert by_name["paused-one"] == "disabled"
    assert datetime.fromisoformat(by_name["skincare"]) > datetime.now(UTC)


def test_credits_today_and_month_follow_the_config_timezone(settings: Settings) -> None:
    """Credits at 23:30 UTC on the 31st count as tomorrow and next month in Paris."""
    db = Store(settings.state.database)
    try:
        _poll(db, "acme-shop", datetime(2025, 1, 31, 22, 30, tzinfo=UTC), credits=7)
        _poll(db, "acme-shop", datetime(2025, 1, 31, 23, 30, tzinfo=UTC), credits=11)
        _poll(db, "skincare", datetime(2025, 2, 1, 8, 0, tzinfo=UTC), credits=2, remaining=40)
        report = build_status(settings, db, datetime(2025, 2, 1, 9, 0, tzinfo=UTC))
    finally:
        db.close()
    assert (report.credits_today, report.credits_month) == (13, 13)
    acme = next(w for w in report.watches if w.name == "acme-shop")
    assert (acme.credits_today, acme.credits_month) == (11, 11)
    assert report.balance == 40


PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "last", "now", "expected"),
    [
        (Schedule(every=timedelta(hours=1)), None, T0, None),
        (
            Schedule(every=timedelta(hours=1)),
            T0,
            T0 + timedelta(minutes=5),
            T0 + timedelta(hours=1),
        ),
        (Schedule(every=timedelta(hours=1)), T0, T0 + timedelta(hours=2), None),
        (Schedule(cron="0 9 * * *"), None, T0, datetime(2025, 3, 11, 8, 0, tzinfo=UTC)),
        (Schedule(cron="30 * * * *"), T0, T0, datetime(2025, 3, 10, 12, 30, tzinfo=UTC)),
    ],
)
def test_next_poll(
    schedule: Schedule, last: datetime | None, now: datetime, expected: datetime | None
) -> None:
    """Next poll: last poll + interval (None = soon when never/overdue), cron's next fire."""
    assert next_poll(schedule, PARIS, last, now) == expected


def test_delivery_summary_and_figures_read_compactly() -> None:
    """Summaries show attempts for unsent deliveries; rank figures read as `rank a→b`."""
    deliveries = [
        DeliveryView("marketing", 0, "sent", 1, None),
        DeliveryView("marketing", 1, "pending", 2, "secret"),
        DeliveryView("ops", 0, "pending", 0, None),
        DeliveryView("ops", 1, "dead", 5, None),
    ]
    assert delivery_summary(deliveries) == (
        "marketing[0] sent, marketing[1] pending(2), ops[0] pending, ops[1] dead(5)"
    )
    assert delivery_summary([]) == "-"
    figures = {"rank_before": 48, "rank_after": 7, "views": 1_200_000, "note": None}
    assert format_figures(figures) == "rank 48→7, views 1,200,000"


def test_status_says_how_each_watch_reads_its_changes(config: Path, store: Store) -> None:
    """What was learned of the API (updatedAfter refused, updatedAt moving on metrics)
    shows as each watch's reading strategy, in the table and in JSON."""
    code, out = _invoke(config, "status", "--json")
    by_name = {w["name"]: w for w in json.loads(out)["watches"]}
    assert by_name["acme-shop"]["strategy"].startswith("change feed (updatedAfter) if accepted")
    assert by_name["paused-one"]["strategy"] == "disabled"
    store.meta.set("api.updated_after", "0")
    code, out = _invoke(config, "status")
    assert code == 0, out
    assert "reading: stored newest order: free counts + probes (updatedAt not learned" in out
    store.meta.set("api.updated_after", "1")
    code, out = _invoke(config, "status", "--json")
    by_name = {w["name"]: w for w in json.loads(out)["watches"]}
    assert by_name["acme-shop"]["strategy"] == "change feed (updatedAfter)"


def test_status_says_which_replica_holds_each_watch(
    settings: Settings, store: Store, now: datetime
) -> None:
    """With two replicas' live leases in the database, status names each watch's holder
    and each replica's share; an expired lease is nobody's."""
    Leases(store, "host-a-1", timedelta(seconds=30)).take(
        [replica_lease("host-a-1"), watch_lease("acme-shop"), OUTBOX]
    )
    Leases(store, "host-b-2", timedelta(seconds=30)).take(
        [replica_lease("host-b-2"), watch_lease("skincare")]
    )
    Leases(store, "host-c-3", timedelta(microseconds=1)).take(
        [replica_lease("host-c-3"), watch_lease("paused-one")]
    )
    report = build_status(settings, store, now)
    by_name = {w.name: w for w in report.watches}
    assert by_name["acme-shop"].replica == "host-a-1"
    assert by_name["skincare"].replica == "host-b-2"
    assert by_name["paused-one"].replica is None
    assert [(r.id, r.watches, r.delivers) for r in report.replicas] == [
        ("host-a-1", 1, True),
        ("host-b-2", 1, False),
    ]
    text = format_status(report)
    assert "    polled by: host-a-1" in text
    assert "replicas: host-a-1 (1 watches, delivers), host-b-2 (1 watches)" in text
    assert status_json(report)["replicas"] == [
        {"id": "host-a-1", "watches": 1, "delivers": True},
        {"id": "host-b-2", "watches": 1, "delivers": False},
    ]
