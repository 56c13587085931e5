"""Several `watcher run` replicas on one real PostgreSQL, against the simulator with a
fast clock (a simulated day every 3 s) and `every: 1s` watches, with 2 s leases.

What must hold: every event of the truth log is recorded once and alerted once; a
replica SIGKILLed mid-poll or mid-delivery is taken over within about a lease, nothing
is lost, and nothing is sent twice beyond the one message in flight; no refresh of a
watch is read (paid for) twice. Nothing waits by sleeping: every wait polls the logs,
the receiver or the database with a deadline.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from tests.receivers import HttpReceiver, free_port, wait_until
from tests.simworld import ITEM_EVENTS, Target, expected_events
from tests.test_daemon_e2e import (
    KEYS,
    SECRET_KEY,
    SPEED,
    TIKTOK_ID,
    Daemon,
    eventually,
    is_poll,
    messages,
    targets,
)
from watcher.models import ITEM_KINDS
from watcher.simulator.clock import parse_iso
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import Store
from watcher.store.leases import OUTBOX, WATCH, leases
from watcher.store.tables import PollRow

pytestmark = pytest.mark.postgres

LEASE = 2.0
TAKEOVER = LEASE + LEASE / 3 + 5.0  # a lease, a step, and slack for a loaded machine
WAIT = 60.0


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with running_simulator(
        seed=11, speed=SPEED, api_keys=KEYS, rate_limit=100_000, credits=1_000_000
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


@pytest.fixture
def db(pg_url: str) -> str:
    """A PostgreSQL database at the schema's head (the replicas then skip migrating)."""
    Store(pg_url).close()
    return pg_url


@pytest.fixture
def replicas() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.close()


def config(sim: SimHandle, url: str, watches: dict[str, Target], hook: str) -> str:
    lines = [
        "version: 1",
        f'api: {{base_url: "{sim.base_url}", api_key: "{SECRET_KEY}",'
        " max_requests_per_minute: 6000}",
        f'state: {{database: "{url}", lease: {LEASE:g}s}}',
        f'notifiers: {{hook: {{urls: ["{hook}"]}}}}',
        f"defaults: {{notify: [hook], every: 1s, events: {ITEM_EVENTS}}}",
        "watches:",
        *(f'  - {{name: {name}, {t.kind}: "{t.value}"}}' for name, t in watches.items()),
    ]
    return "\n".join(lines) + "\n"


def start(replicas: list[Daemon], cfg: Path, n: int) -> Daemon:
    daemon = Daemon(cfg, {"WATCHER_HEALTH_PORT": str(free_port())})
    daemon.log = cfg.with_name(f"replica{n}.log")
    replicas.append(daemon.start())
    return daemon


def replica_id(daemon: Daemon) -> str:
    assert daemon.proc is not None
    return f"{socket.gethostname()}-{daemon.proc.pid}"


def holders(url: str) -> dict[str, str]:
    """Live leases: watch name (or ``outbox``) -> replica id."""
    store = Store(url, migrate=False)
    try:
        return {
            v.name.removeprefix(WATCH): v.holder
            for v in leases(store)
            if v.live and (v.name.startswith(WATCH) or v.name == OUTBOX)
        }
    finally:
        store.close()


def spread(url: str, names: list[str], daemons: list[Daemon]) -> bool:
    """Every watch held by one of ``daemons``, each holding its fair share, one delivering."""
    held = holders(url)
    ids = [replica_id(d) for d in daemons]
    per = Counter(held.get(name) for name in names)
    share = -(-len(names) // len(daemons))
    return (
        all(held.get(name) in ids for name in names)
        and all(0 < per[i] <= share for i in ids)
        and held.get(OUTBOX) in ids
    )


def baselines(url: str, names: list[str]) -> dict[str, datetime]:
    store = Store(url, migrate=False)
    try:
        out = {}
        for name in names:
            at = store.memory.load(name).baseline_at
            if at is not None:
                out[name] = at
        return out
    finally:
        store.close()


def recorded(url: str) -> Counter[tuple[str, str, str]]:
    store = Store(url, migrate=False)
    try:
        return Counter(
            (v.event.watch, v.event.kind.value, v.event.item.id)
            for v in store.outbox.events(limit=100_000)
            if v.event.kind in ITEM_KINDS and v.event.item is not None
        )
    finally:
        store.close()


def outbox_empty(url: str) -> bool:
    store = Store(url, migrate=False)
    try:
        return store.outbox.depth() == 0
    finally:
        store.close()


def reading_polls(url: str) -> Counter[str]:
    """Polls that spent credits (read the API), per watch."""
    store = Store(url, migrate=False)
    try:
        with store.db.read() as s:
            rows = s.exec(
                select(col(PollRow.watch), func.count())
                .where(col(PollRow.credits) > 0)
                .group_by(col(PollRow.watch))
            ).all()
        return Counter({str(w): int(n) for w, n in rows})
    finally:
        store.close()


def expected(
    sim: SimHandle, watches: dict[str, Target], since: dict[str, datetime], until: datetime
) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    truth = sim.truth()
    for name, target in watches.items():
        mine = [c for c in truth if since[name] < _at(c) <= until]
        out += expected_events(mine, [target])
    return out


def _at(change: dict[str, object]) -> datetime:
    at = parse_iso(str(change["at"]))
    assert at is not None
    return at


def settle(sim: SimHandle, url: str, watches: dict[str, Target]) -> dict[str, datetime]:
    """Once every watch has its baseline, wait for the next refresh; count truth from it
    (a refresh landing during a baseline belongs to it or not by the instant)."""
    wait_until(lambda: len(baselines(url, list(watches))) == len(watches), WAIT)
    landed = sim.world()["refreshes"]
    wait_until(lambda: sim.world()["refreshes"] != landed, WAIT)
    after = sim.now()
    return {name: max(at, after) for name, at in baselines(url, list(watches)).items()}


def check_delivered(
    rx: HttpReceiver, path: str, got: Counter[tuple[str, str, str]], sim: SimHandle
) -> int:
    """Every recorded event reached the receiver; returns how many messages repeated."""
    received = messages(rx, path)
    text = " ".join(m["message"] for m in received)
    truth_ids = {str(c["itemId"]): str(c["tiktokId"]) for c in sim.truth()}
    for _watch, _kind, item_id in got:
        assert truth_ids[item_id] in text, f"event of {item_id} never delivered"
    keys = Counter((m["title"], frozenset(TIKTOK_ID.findall(m["message"]))) for m in received)
    return sum(n - 1 for n in keys.values())


def all_recorded(
    sim: SimHandle, url: str, watches: dict[str, Target], since: dict[str, datetime]
) -> None:
    """After the next refresh (where staged changes land), wait until every event the truth
    log calls for is recorded; say which are missing if they never are."""
    landed = sim.world()["refreshes"]
    wait_until(lambda: sim.world()["refreshes"] != landed, WAIT)
    until = sim.now()
    missing: Counter[tuple[str, str, str]] = Counter()

    def done() -> bool:
        nonlocal missing
        missing = expected(sim, watches, since, until) - recorded(url)
        return not missing

    try:
        eventually(done)
    except AssertionError:
        raise AssertionError(f"never recorded: {sorted(missing)}") from None
    return until


def polled_after(daemon: Daemon, watch: str, after: int) -> bool:
    return bool(daemon.find(lambda line: is_poll(line, watch), after))


@pytest.mark.timeout(300)
def test_three_replicas_share_the_watches_and_survive_a_sigkill_mid_poll(
    sim: SimHandle, rx: HttpReceiver, db: str, tmp_path: Path, replicas: list[Daemon]
) -> None:
    """Three replicas split six watches two by two, one delivers; events of the truth
    log are alerted exactly once. One replica SIGKILLed while its poll waits on the API:
    the two others take its watches within about a lease and its changes are alerted."""
    t = targets(sim)
    watches = {name: t[name] for name in ("shop0", "shop1", "shop2", "shop3", "handle0", "tag0")}
    names = list(watches)
    cfg = tmp_path / "watches.yaml"
    cfg.write_text(config(sim, db, watches, f"{rx.url}r3"), "utf-8")
    daemons = [start(replicas, cfg, n) for n in range(3)]
    wait_until(lambda: spread(db, names, daemons), WAIT)
    since = settle(sim, db, watches)
    refreshes0 = sim.world()["refreshes"]
    assert isinstance(refreshes0, int)
    for daemon in daemons:
        assert daemon.proc is not None
        port = daemon.env["WATCHER_HEALTH_PORT"]
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["status"] == "ok"
        assert health["replica"]["id"] == replica_id(daemon)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        mine = [w for w, h in holders(db).items() if h == replica_id(daemon) and w in watches]
        for name in mine:
            assert f'watcher_watch_held{{watch="{name}"}} 1.0' in metrics

    for shop in ("shop0", "shop1", "shop2", "shop3"):
        sim.change("new_item", type="ad", shopId=t[shop].value)
    all_recorded(sim, db, watches, since)

    # SIGKILL one replica while its poll (and the others') waits on a held API request.
    victim, survivors = daemons[0], daemons[1:]
    lost = [w for w, h in holders(db).items() if h == replica_id(victim) and w in watches]
    assert lost
    sim.hold_after(0)
    try:
        wait_until(lambda: int(str(sim.fault_state()["held"])) >= 3, WAIT)  # all three
        marks = [len(d.lines()) - 1 for d in survivors]
        victim.kill()
        killed = time.monotonic()
    finally:
        sim.hold_after(None)
    wait_until(lambda: spread(db, names, survivors), WAIT)
    took_over = time.monotonic() - killed
    for name in lost:
        wait_until(
            lambda name=name: any(  # type: ignore[misc]
                polled_after(d, name, m) for d, m in zip(survivors, marks, strict=True)
            ),
            WAIT,
        )
    polled_again = time.monotonic() - killed
    assert took_over < TAKEOVER, f"takeover took {took_over:.1f}s"
    assert polled_again < TAKEOVER + 2, f"polled again after {polled_again:.1f}s"

    for name in lost:
        if watches[name].kind == "shop":
            sim.change("new_item", type="ad", shopId=watches[name].value)
    until = all_recorded(sim, db, watches, since)
    eventually(lambda: outbox_empty(db))
    for daemon in survivors:
        assert daemon.terminate() < 15
    got = recorded(db)
    assert expected(sim, watches, since, until) - got == Counter(), "none lost"
    assert got - expected(sim, watches, baselines(db, names), sim.now()) == Counter(), "none twice"
    assert check_delivered(rx, "/r3", got, sim) == 0, "no alert repeated (none was in flight)"
    refreshes = sim.world()["refreshes"]
    assert isinstance(refreshes, int)
    reads = reading_polls(db)
    # One read per refresh and watch (plus the baseline, and the poll the kill cut short).
    for name in names:
        assert reads[name] <= refreshes - refreshes0 + 3, (name, reads, refreshes - refreshes0)


@pytest.mark.timeout(240)
def test_a_replica_killed_mid_delivery_is_taken_over_repeating_only_that_message(
    sim: SimHandle, rx: HttpReceiver, db: str, tmp_path: Path, replicas: list[Daemon]
) -> None:
    """Two replicas; the one delivering is SIGKILLed while the receiver holds its message:
    the other takes the outbox over within about a lease, sends what was left, and at
    most that one message arrives twice."""
    t = targets(sim)
    watches = {name: t[name] for name in ("shop0", "shop1", "shop2", "shop3")}
    names = list(watches)
    cfg = tmp_path / "watches.yaml"
    cfg.write_text(config(sim, db, watches, f"{rx.url}r2"), "utf-8")
    daemons = [start(replicas, cfg, n) for n in range(2)]
    wait_until(lambda: spread(db, names, daemons), WAIT)
    since = settle(sim, db, watches)

    sent_before = len(messages(rx, "/r2"))
    rx.hold(after=0)
    try:
        sim.change("new_item", type="ad", shopId=t["shop0"].value)
        sim.change("new_item", type="ad", shopId=t["shop1"].value)
        wait_until(lambda: len(messages(rx, "/r2")) > sent_before, WAIT)  # one in flight
        deliverer = holders(db)[OUTBOX]
        [victim] = [d for d in daemons if replica_id(d) == deliverer]
        [survivor] = [d for d in daemons if d is not victim]
        victim.kill()
        killed = time.monotonic()
    finally:
        rx.release()
    wait_until(lambda: spread(db, names, [survivor]), WAIT)
    took_over = time.monotonic() - killed
    assert took_over < TAKEOVER, f"takeover took {took_over:.1f}s"

    sim.change("new_item", type="ad", shopId=t["shop2"].value)
    until = all_recorded(sim, db, watches, since)
    eventually(lambda: outbox_empty(db))
    assert survivor.terminate() < 15
    got = recorded(db)
    assert expected(sim, watches, since, until) - got == Counter(), "none lost"
    assert got - expected(sim, watches, baselines(db, names), sim.now()) == Counter()
    assert check_delivered(rx, "/r2", got, sim) <= 1, "only the message in flight twice"
