"""Sharing watches between replicas: the pure share decision as a table, then replicas
stepping over one database (SQLite and a real PostgreSQL), with a monotonic clock of
their own so a lease can run out without waiting for it."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import create_engine

from watcher.config import load_settings
from watcher.replicas import Replica, default_replica_id, next_step, plan_share
from watcher.store import AsyncStore, Store
from watcher.store.leases import Leases, replica_lease

W = [f"w{n}" for n in range(10)]

SHARES = [
    # (wanted, mine, taken by others, replicas, busy) -> (taken count, released)
    pytest.param(W, set(), set(), 1, set(), 10, set(), id="alone-takes-all"),
    pytest.param(W, set(), set(), 2, set(), 5, set(), id="half-of-two"),
    pytest.param(W, set(), set(), 3, set(), 4, set(), id="ceil-of-three"),
    pytest.param(W, set(W), set(), 2, set(), 0, 5, id="sheds-to-its-share"),
    pytest.param(W, set(W), set(), 2, set(W[:8]), 0, 2, id="never-sheds-a-busy-watch"),
    pytest.param(W, set(W[:5]), set(W[5:]), 2, set(), 0, 0, id="balanced-stays"),
    pytest.param(W, set(W[:3]), set(W[3:6]), 2, set(), 2, 0, id="takes-a-dead-ones-share"),
    pytest.param(W[:4], {"gone", "w0"}, set(), 1, set(), 3, 1, id="drops-unconfigured"),
    pytest.param(W[:4], {"gone"}, set(), 1, {"gone"}, 4, 0, id="keeps-a-busy-unconfigured"),
    pytest.param([], set(), set(), 2, set(), 0, 0, id="nothing-to-share"),
]


@pytest.mark.parametrize(("wanted", "mine", "taken", "replicas", "busy", "takes", "drops"), SHARES)
def test_plan_share(
    wanted: list[str],
    mine: set[str],
    taken: set[str],
    replicas: int,
    busy: set[str],
    takes: int,
    drops: int | set[str],
) -> None:
    """A replica takes free watches up to ceil(watches / replicas), sheds above it (never
    one mid-poll), drops what left the config, and never takes what another holds."""
    plan = plan_share("A", wanted, mine, taken, replicas, busy)
    assert len(plan.take) == takes
    assert len(plan.release) == (drops if isinstance(drops, int) else len(drops))
    assert not set(plan.take) & (mine | taken)
    assert not set(plan.release) & busy
    assert set(plan.release) <= mine


@pytest.mark.parametrize(("wanted", "mine", "taken", "replicas", "busy", "takes", "drops"), SHARES)
def test_a_plan_needs_the_others_leases_only_to_take(
    wanted: list[str],
    mine: set[str],
    taken: set[str],
    replicas: int,
    busy: set[str],
    takes: int,
    drops: int | set[str],
) -> None:
    """Planned without the others' leases, a step releases the same and takes at least as
    many as with them: taking nothing then, it needs not read them (a step reads 10,000
    leases only when it is short of its share)."""
    blind = plan_share("A", wanted, mine, (), replicas, busy)
    seen = plan_share("A", wanted, mine, taken, replicas, busy)
    assert blind.release == seen.release
    assert len(seen.take) <= len(blind.take)
    assert len(seen.take) == takes
    assert blind.take or not seen.take


def test_replicas_reach_for_different_free_watches_first() -> None:
    """Two replicas' first choices among the same free watches mostly differ."""
    many = [f"w{n}" for n in range(100)]
    a = plan_share("A", many, (), (), 2).take
    b = plan_share("B", many, (), (), 2).take
    assert len(set(a) & set(b)) < 40


@pytest.mark.parametrize(
    ("due", "now", "expected"),
    [
        (100.0, 100.4, 110.0),  # a quick step: the next one on the beat
        (100.0, 108.0, 110.0),  # a slow step: still on the beat, not 10 s after its end
        (100.0, 113.0, 113.0),  # a step longer than the interval: the next one at once
    ],
)
def test_steps_keep_a_fixed_beat(due: float, now: float, expected: float) -> None:
    """Renewals are due every interval from the first, whatever a step took."""
    assert next_step(due, 10.0, now) == expected


async def test_a_step_runs_while_every_thread_of_the_pool_is_busy(
    two_stores: tuple[Store, Store],
) -> None:
    """The lease step has a thread of its own: polls' store calls filling the shared
    pool (here blocked outright) don't hold a renewal back."""
    a, _ = two_stores
    replica = Replica(AsyncStore(a), timedelta(seconds=30), "A")
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=2)
    loop.set_default_executor(pool)
    release = threading.Event()
    blocked = [loop.run_in_executor(None, release.wait) for _ in range(4)]
    try:
        async with asyncio.timeout(20):
            taken = await replica.step(W)
        assert taken == set(W)
        assert replica.holds("w0")
    finally:
        release.set()
        await asyncio.gather(*blocked)


def test_the_default_id_is_host_and_pid() -> None:
    assert default_replica_id().endswith(f"-{os.getpid()}")


class Mono:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_two_replicas_split_the_watches_and_one_delivers(two_stores: tuple[Store, Store]) -> None:
    """A first replica takes every watch and the outbox; a second joins: the first sheds
    to its share, the second takes the rest; only one of them delivers."""
    a, b = two_stores
    ra = Replica(AsyncStore(a), timedelta(seconds=30), "A")
    rb = Replica(AsyncStore(b), timedelta(seconds=30), "B")
    ra.start(W)
    assert ra.watches == set(W)
    assert ra.delivers()
    rb.start(W)  # sees A's leases live: nothing free yet
    assert rb.watches == set()
    assert not rb.delivers()
    assert rb.replicas == 2
    asyncio.run(ra.step(W))  # two replicas now: A sheds to 5
    assert len(ra.watches) == 5
    asyncio.run(rb.step(W))
    assert rb.watches == set(W) - ra.watches
    assert ra.delivers() != rb.delivers()


def test_a_replica_that_stops_renewing_stops_polling_and_is_taken_over(
    two_stores: tuple[Store, Store],
) -> None:
    """A replica whose lease ran out by its own monotonic clock holds nothing it may use;
    once the lease has expired in the database, the other takes its watches and the
    outbox; its later renewal says it lost them."""
    a, b = two_stores
    lease = timedelta(seconds=0.4)
    mono = Mono()
    ra = Replica(AsyncStore(a), lease, "A", monotonic=mono)
    rb = Replica(AsyncStore(b), lease, "B")
    ra.start(W)
    assert ra.holds("w1")
    mono.now += 0.4  # A is stuck (a long pause): its leases count as lost to it
    assert not ra.holds("w1")
    assert not ra.delivers()

    async def until_taken() -> None:
        async with asyncio.timeout(10):
            while rb.watches != set(W) or not rb.delivers():
                await rb.step(W)
                await asyncio.sleep(0.05)  # stepping with a deadline until A's leases expire

    asyncio.run(until_taken())
    asyncio.run(ra.step(W))
    assert ra.watches == set()
    assert not ra.outbox


def test_leaving_hands_everything_over_at_once(two_stores: tuple[Store, Store]) -> None:
    """A clean stop releases every lease: the other takes over at its next step."""
    a, b = two_stores
    ra = Replica(AsyncStore(a), timedelta(seconds=30), "A")
    rb = Replica(AsyncStore(b), timedelta(seconds=30), "B")
    ra.start(W)
    asyncio.run(ra.leave())
    assert not ra.holds("w0")
    rb.start(W)
    assert rb.watches == set(W)
    assert rb.delivers()


def test_a_store_failure_keeps_the_replica_alive_until_its_leases_end(tmp_path: Path) -> None:
    """Renewal failing (the database went away) is logged, not raised; the leases count
    until their end and then stop polling."""
    store = Store(f"sqlite:///{tmp_path}/s.db")
    mono = Mono()
    replica = Replica(AsyncStore(store), timedelta(seconds=30), "A", monotonic=mono)
    replica.start(W)
    store.close()
    store.db.engine = create_engine("sqlite:////nonexistent/folder/x.db")  # unreachable now
    assert asyncio.run(replica.step(W)) == set()
    assert asyncio.run(replica.step(W)) == set()  # said once
    assert replica.holds("w0")
    mono.now += 30
    assert not replica.holds("w0")


def test_state_lease_and_replica_id_are_read_from_the_config(tmp_path: Path) -> None:
    """`state.lease` defaults to 30 s; it and `state.replica_id` can be set."""
    base = "version: 1\napi: {api_key: k}\nwatches:\n  - {name: a, hashtag: x}\n"
    path = tmp_path / "watches.yaml"
    path.write_text(base, "utf-8")
    assert load_settings(path, {}).state.lease == timedelta(seconds=30)
    assert load_settings(path, {}).state.replica_id is None
    path.write_text(base + "state: {lease: 2s, replica_id: node-1}\n", "utf-8")
    state = load_settings(path, {}).state
    assert (state.lease, state.replica_id) == (timedelta(seconds=2), "node-1")


def test_once_refuses_to_run_beside_live_replicas(db_url: str, tmp_path: Path) -> None:
    """`watcher once` beside running replicas (a live heartbeat lease) exits 1 and says
    why, before it polls or sends anything."""
    from click.testing import CliRunner  # noqa: PLC0415

    from watcher.cli import cli  # noqa: PLC0415

    path = tmp_path / "watches.yaml"
    path.write_text(
        "version: 1\n"
        'api: {base_url: "http://127.0.0.1:9", api_key: k, timeout_seconds: 0.5}\n'
        f'state: {{database: "{db_url}"}}\n'
        "watches:\n  - {name: a, hashtag: x}\n",
        "utf-8",
    )
    store = Store(db_url)
    try:
        Leases(store, "node-1", timedelta(seconds=30)).take([replica_lease("node-1")])
        result = CliRunner().invoke(cli, ["-c", str(path), "once"])
        assert result.exit_code == 1
        assert "replicas are running on this database (node-1)" in result.output
        assert "does not start" in result.output
    finally:
        store.close()
