"""The delivery worker with a real store (SQLite and PostgreSQL) and real local receivers.

Time comes from an injected clock, so backoff is checked without waiting.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from tests.receivers import HttpReceiver, Received, free_port
from watcher.channels import channel_for_url
from watcher.config import Settings, load_settings
from watcher.detect import Detection, WatchState, event_key
from watcher.models import Event, EventKind, Item, ItemStatus, ItemType, ops_event
from watcher.outbox import Outbox, backoff
from watcher.render import Renderer
from watcher.runner import ops_routes, routes_for
from watcher.store import PollRecord, Store
from watcher.store.tables import DeliveryRow

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
TIKTOK_ID = re.compile(r"\b7\d{18}\b")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store at the schema's head, on SQLite and on PostgreSQL."""
    s = Store(db_url, migrate=False)
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


@pytest.fixture
def rx2() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


@pytest.fixture
def ops_rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


def make_settings(
    tmp_path: Path,
    notifiers: dict[str, Sequence[str]],
    *,
    watches: Sequence[str] = ("acme: [marketing]",),
    extra: str = "",
    name: str = "watches.yaml",
) -> Settings:
    """Settings with ``notifiers``; each watch is ``"name: [notifier, ...]"``."""
    lines = [
        "version: 1",
        "api: {api_key: tt_test}",
        "notifiers:",
        *(
            f"  {n}: {{urls: [{', '.join(repr(u) for u in urls)}]}}"
            for n, urls in notifiers.items()
        ),
        "ops_notify: [ops]" if "ops" in notifiers else "",
        extra,
        "watches:",
    ]
    for spec in watches:
        watch, notify = spec.split(": ", 1)
        lines.append(f"  - {{name: {watch}, handle: {watch}, notify: {notify}}}")
    path = tmp_path / name
    path.write_text("\n".join(line for line in lines if line) + "\n", "utf-8")
    return load_settings(path, {})


def item_event(
    watch: str, n: int, kind: EventKind = EventKind.NEW_AD, caption: str = "fresh drop"
) -> Event:
    item = Item(
        id=f"itm_{watch}_{n}",
        tiktok_id=str(7_100_000_000_000_000_000 + n),
        type=ItemType.AD,
        status=ItemStatus.ACTIVE,
        handle=watch,
        caption=caption,
        views=10_000 + n,
    )
    return Event(event_key(watch, kind, item.id, "c"), kind, watch, T0, item, {"views": item.views})


def record_poll(store: Store, settings: Settings, watch: str, events: Sequence[Event]) -> None:
    """Store one poll of ``watch`` that found ``events``, routed as the runner would."""
    detection = Detection(WatchState(has_baseline=True), tuple(events), frozenset())
    record = PollRecord(watch, T0, 10, "ok", detection=detection)
    store.apply_poll(record, routes_for(settings, settings.watch(watch)))


def text_of(request: Received) -> str:
    payload = request.json()
    assert isinstance(payload, dict)
    return f"{payload['title']}\n{payload['message']}"


def ids_in(requests: Sequence[Received]) -> Counter[str]:
    """How often each tiktok id arrived, over ``requests``."""
    return Counter(i for r in requests for i in set(TIKTOK_ID.findall(text_of(r))))


def ids_of(events: Sequence[Event]) -> set[str]:
    return {str(e.item.tiktok_id) for e in events if e.item}


def next_attempts(store: Store, notifier: str, index: int) -> list[datetime]:
    with Session(store.engine) as session:
        query = (
            select(col(DeliveryRow.next_attempt_at))
            .where(col(DeliveryRow.notifier) == notifier, col(DeliveryRow.url_index) == index)
            .order_by(col(DeliveryRow.id))
        )
        return list(session.exec(query))


def states(store: Store) -> Counter[tuple[str, int, str]]:
    """(notifier, url position, state) over every event's deliveries."""
    return Counter(
        (d.notifier, d.url_index, d.state) for v in store.outbox.events() for d in v.deliveries
    )


# --- grouping and routing -------------------------------------------------------------


async def test_a_polls_events_make_one_digest_per_url_and_ops_events_go_alone(
    tmp_path: Path,
    store: Store,
    clock: Clock,
    rx: HttpReceiver,
    rx2: HttpReceiver,
    ops_rx: HttpReceiver,
) -> None:
    """Three events of one poll: one message per URL; a later poll and an ops event alone."""
    settings = make_settings(tmp_path, {"marketing": [rx.url, rx2.url], "ops": [ops_rx.url]})
    first = [item_event("acme", n) for n in range(3)]
    record_poll(store, settings, "acme", first)
    record_poll(store, settings, "acme", [item_event("acme", 9, EventKind.PINNED)])
    failing = ops_event(EventKind.WATCH_FAILING, "acme", T0, {"failures": 3})
    store.outbox.record(failing, ops_routes(settings))

    report = await Outbox(settings, store, clock=clock).flush()

    assert (report.sent, report.failed, report.dead) == (2 * 4 + 1, 0, 0)
    for receiver in (rx, rx2):
        digest, single = receiver.wait_for(2)
        assert len(receiver.requests) == 2
        assert set(TIKTOK_ID.findall(text_of(digest))) == ids_of(first)
        assert "acme" in text_of(digest)
        assert "3 changes" in text_of(digest)
        assert set(TIKTOK_ID.findall(text_of(single))) == {str(7_100_000_000_000_000_009)}
    [ops_message] = ops_rx.wait_for(1)
    assert not TIKTOK_ID.findall(text_of(ops_message))
    assert "acme" in text_of(ops_message)
    assert store.outbox.depth() == 0
    again = await Outbox(settings, store, clock=clock).flush()
    assert again.sent == 0
    assert len(rx.requests) == 2


def test_one_event_is_its_own_alert_and_several_are_a_digest(tmp_path: Path, store: Store) -> None:
    """Whether events make one alert or a digest is the renderer's decision alone."""
    url = "json://127.0.0.1:9/"
    settings = make_settings(tmp_path, {"marketing": [url]})
    renderer = Renderer(digest_threshold=settings.delivery.digest_threshold)
    outbox = Outbox(settings, store, renderer)
    one, two = item_event("acme", 1), item_event("acme", 2)
    channel = channel_for_url(url)
    assert outbox.messages_for(url, [one]) == [renderer.render_event(one, channel)]
    both = renderer.render_digest("acme", [one, two], channel)
    assert outbox.messages_for(url, [one, two]) == both
    assert both != [renderer.render_event(one, channel)]


async def test_events_follow_the_watch_notify_list_route_extras_and_ops_notify(
    tmp_path: Path,
    store: Store,
    clock: Clock,
    rx: HttpReceiver,
    rx2: HttpReceiver,
    ops_rx: HttpReceiver,
) -> None:
    """notify picks the watch's notifiers, route adds one by kind, ops go to ops only."""
    settings = make_settings(
        tmp_path,
        {"marketing": [rx.url], "sales": [rx2.url], "ops": [ops_rx.url]},
        watches=("acme: [marketing]", "beta: [sales]"),
        extra="route: {pinned: [sales]}",
    )
    acme_ad, acme_pin = item_event("acme", 1), item_event("acme", 2, EventKind.PINNED)
    beta_ad = item_event("beta", 3)
    record_poll(store, settings, "acme", [acme_ad])
    record_poll(store, settings, "acme", [acme_pin])
    record_poll(store, settings, "beta", [beta_ad])
    store.outbox.record(ops_event(EventKind.CREDITS_LOW, "api", T0, {}), ops_routes(settings))

    await Outbox(settings, store, clock=clock).flush()

    assert ids_in(rx.wait_for(2)) == Counter(ids_of([acme_ad, acme_pin]))
    assert ids_in(rx2.wait_for(2)) == Counter(ids_of([acme_pin, beta_ad]))
    [ops_message] = ops_rx.wait_for(1)
    assert "credit" in text_of(ops_message).lower()
    assert len(rx.requests) == len(rx2.requests) == 2


async def test_a_new_row_is_due_even_when_stamped_ahead_of_our_clock(
    tmp_path: Path, store: Store, clock: Clock, rx: HttpReceiver
) -> None:
    """Events carry the API's clock; one ahead of ours is still sent at once."""
    settings = make_settings(tmp_path, {"marketing": [rx.url]})
    clock.now = T0 - timedelta(hours=3)
    record_poll(store, settings, "acme", [item_event("acme", 1)])
    report = await Outbox(settings, store, clock=clock).flush()
    assert report.sent == 1
    rx.wait_for(1)


# --- failure, backoff, dead ----------------------------------------------------------


async def test_a_dead_url_backs_off_dies_once_and_never_holds_back_its_sibling(
    tmp_path: Path,
    store: Store,
    clock: Clock,
    rx: HttpReceiver,
    rx2: HttpReceiver,
    ops_rx: HttpReceiver,
) -> None:
    """URL 1 fails: URL 0 gets each message once; URL 1 backs off 10, 20 s, then dies."""
    settings = make_settings(
        tmp_path,
        {"marketing": [rx.url, rx2.url], "ops": [ops_rx.url]},
        extra="delivery: {max_attempts: 3, backoff_seconds: 10}",
    )
    rx2.fail_next(1000)
    outbox = Outbox(settings, store, clock=clock, rng=lambda: 1.0)
    polls = [[item_event("acme", 1), item_event("acme", 2)], [item_event("acme", 3)]]
    for events in polls:
        record_poll(store, settings, "acme", events)

    first = await outbox.flush()
    assert (first.sent, first.failed, first.dead) == (3, 3, 0)
    assert len(rx2.wait_for(1)) == 1, "the dead URL is probed with one message, not flooded"
    assert set(next_attempts(store, "marketing", 1)) == {T0 + timedelta(seconds=10)}
    assert states(store)[("marketing", 1, "pending")] == 3

    clock.advance(9)
    assert await outbox.flush() == type(first)(), "nothing is due before the backoff"
    assert len(rx2.requests) == 1

    clock.advance(1)
    await outbox.flush()
    assert set(next_attempts(store, "marketing", 1)) == {clock.now + timedelta(seconds=20)}
    clock.advance(20)
    last = await outbox.flush()
    assert (last.sent, last.dead) == (1, 3)  # the one sent: delivery_failed, to ops
    assert len(rx2.requests) == 3

    views = store.outbox.events()
    failed = [v for v in views if v.event.kind == EventKind.DELIVERY_FAILED]
    assert len(failed) == 1, "one ops event for the URL, not one per message"
    assert failed[0].event.watch == "marketing[1]"
    assert failed[0].event.figures["messages"] == 3
    [alert] = ops_rx.wait_for(1)
    assert "marketing" in text_of(alert)
    assert "3 attempts" in text_of(alert)
    by_url = {(d.notifier, d.url_index): d for v in views if v.event.item for d in v.deliveries}
    assert by_url[("marketing", 0)].state == "sent"
    assert by_url[("marketing", 0)].attempts == 1
    assert by_url[("marketing", 1)].state == "dead"
    assert by_url[("marketing", 1)].attempts == 3
    assert by_url[("marketing", 1)].last_error
    assert ids_in(rx.requests) == Counter(ids_of([e for p in polls for e in p]))

    # The episode stays open: more dead messages add no second delivery_failed.
    record_poll(store, settings, "acme", [item_event("acme", 4)])
    for _ in range(3):
        await outbox.flush()
        clock.advance(3600)
    assert states(store)[("marketing", 1, "dead")] == 4
    assert [v.event.kind for v in store.outbox.events()].count(EventKind.DELIVERY_FAILED) == 1
    assert len(ops_rx.requests) == 1
    assert ids_in(rx.requests)[str(7_100_000_000_000_000_004)] == 1


async def test_an_outage_then_recovery_delivers_every_event_exactly_once(
    tmp_path: Path, store: Store, clock: Clock, rx: HttpReceiver
) -> None:
    """500 for the next four requests, then fine: every tiktok id arrives exactly once."""
    settings = make_settings(
        tmp_path,
        {"marketing": [rx.url]},
        watches=("acme: [marketing]", "beta: [marketing]"),
        extra="delivery: {backoff_seconds: 5}",
    )
    recorded: list[Event] = []
    for n in range(4):
        for watch in ("acme", "beta"):
            events = [
                item_event(watch, 10 * n + k + (500 if watch == "beta" else 0)) for k in (1, 2)
            ]
            record_poll(store, settings, watch, events)
            recorded += events
    rx.fail_next(4)
    outbox = Outbox(settings, store, clock=clock, rng=lambda: 0.0)
    for _ in range(10):
        await outbox.flush()
        if store.outbox.depth() == 0:
            break
        clock.advance(3600)
    assert store.outbox.depth() == 0
    requests = rx.requests
    assert len(requests) == 4 + 8, "four refused probes, then one digest per poll"
    assert ids_in(requests[4:]) == Counter(ids_of(recorded))
    assert {s for (_, _, s) in states(store)} == {"sent"}


def noted_parts(store: Store) -> list[tuple[str, int, int]]:
    """The digest parts the store holds as sent: (notifier, URL position, part)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT notifier, url_index, number FROM digest_part ORDER BY 1, 2, 3")
        )
        return [(str(n), int(i), int(k)) for n, i, k in rows]


async def test_a_multi_part_digest_resumes_at_the_part_that_failed(
    tmp_path: Path, store: Store, clock: Clock, rx: HttpReceiver
) -> None:
    """Part 2 of a long digest fails: the retry sends parts 2.., never part 1 again."""
    settings = make_settings(
        tmp_path, {"marketing": [rx.url]}, extra="delivery: {digest_threshold: 50}"
    )
    events = [item_event("acme", n, caption=f"long caption {n} " + "word " * 95) for n in range(30)]
    record_poll(store, settings, "acme", events)
    outbox = Outbox(settings, store, clock=clock, rng=lambda: 0.0)
    parts = outbox.messages_for(rx.url, events)
    assert len(parts) >= 3
    rx.fail_next(1, after=1)

    first = await outbox.flush()
    assert (first.sent, first.failed) == (0, 30)
    assert len(rx.requests) == 2
    assert noted_parts(store) == [("marketing", 0, 0)], "part 1 is noted in the store"
    clock.advance(3600)
    second = await outbox.flush()
    assert second.sent == 30
    assert noted_parts(store) == [], "a digest sent whole leaves no note"

    requests = rx.requests
    assert len(requests) == len(parts) + 1
    delivered = [requests[0], *requests[2:]]
    assert [text_of(r) for r in delivered] == [f"{p.title}\n{p.body}" for p in parts]
    assert ids_in(delivered) == Counter(ids_of(events))


# --- configuration changes and secrets ---------------------------------------------------


async def test_rows_of_a_removed_notifier_or_url_die_with_a_clear_reason(
    tmp_path: Path, store: Store, clock: Clock, rx: HttpReceiver, rx2: HttpReceiver
) -> None:
    """A notifier dropped from the config, or one of its URLs: those rows die, others go."""
    before = make_settings(
        tmp_path,
        {"marketing": [rx.url, rx2.url], "sales": [rx2.url]},
        watches=("acme: [marketing, sales]",),
    )
    record_poll(store, before, "acme", [item_event("acme", 1)])
    after = make_settings(tmp_path, {"marketing": [rx.url]}, name="reloaded.yaml")

    report = await Outbox(after, store, clock=clock).flush()

    assert (report.sent, report.dead) == (1, 2)
    rx.wait_for(1)
    assert rx2.requests == []
    (view,) = store.outbox.events()
    errors = {(d.notifier, d.url_index): (d.state, d.last_error) for d in view.deliveries}
    assert errors == {
        ("marketing", 0): ("sent", None),
        ("marketing", 1): ("dead", "notifier 'marketing' has no URL at position 1 any more"),
        ("sales", 0): ("dead", "notifier 'sales' is no longer configured"),
    }
    assert [v.event.kind for v in store.outbox.events()] == [EventKind.NEW_AD], (
        "not a delivery fault"
    )


async def test_no_secret_of_a_failing_url_reaches_last_error_or_the_log(
    tmp_path: Path,
    store: Store,
    clock: Clock,
    rx: HttpReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused port and a 500 with credentials in their URLs: errors name neither."""
    refused = f"json://hookuser:RefusedPassw0rd@127.0.0.1:{free_port()}/hook?token=TokRefused9"
    failing = f"json://hookuser:FailingPassw0rd@127.0.0.1:{rx.port}/hook?token=TokFailing9"
    settings = make_settings(tmp_path, {"marketing": [refused, failing]})
    record_poll(store, settings, "acme", [item_event("acme", 1)])
    rx.fail_next(1)
    with caplog.at_level(logging.DEBUG):
        report = await Outbox(settings, store, clock=clock).flush()
    assert report.failed == 2
    (view,) = store.outbox.events()
    errors = [d.last_error or "" for d in view.deliveries]
    assert all(errors), errors
    logged = caplog.text
    assert "delivery failed" in logged
    for secret in ("RefusedPassw0rd", "TokRefused9", "FailingPassw0rd", "TokFailing9", "hookuser"):
        assert all(secret not in e for e in errors), errors
        assert secret not in logged


def test_backoff_doubles_with_equal_jitter_up_to_an_hour() -> None:
    """Attempt n waits between half and all of base * 2**(n-1), never more than an hour."""
    assert backoff(1, 30, lambda: 0.0) == timedelta(seconds=15)
    assert backoff(1, 30, lambda: 1.0) == timedelta(seconds=30)
    assert backoff(4, 30, lambda: 1.0) == timedelta(seconds=240)
    assert backoff(30, 30, lambda: 1.0) == timedelta(hours=1)
