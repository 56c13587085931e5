"""A replica's scheduler has jobs for the watches it holds and no others: two daemons
(built, their real schedulers started paused) over one real PostgreSQL, each step made
by the test, the clock fixed, so every job's next run is exact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, update

from tests.pgserver import HeadPool
from watcher.config import load_settings
from watcher.daemon import Daemon
from watcher.planner import Outcome
from watcher.store import PollRecord
from watcher.store.leases import WATCH, leases, watch_lease
from watcher.store.tables import LeaseRow

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
W = [f"w{n}" for n in range(10)]
Build = Callable[[str, list[str]], Awaitable[Daemon]]


def config(url: str, replica: str, watches: list[str], every: dict[str, str] | None = None) -> str:
    every = every or {}
    lines = [
        "version: 1",
        'api: {base_url: "http://127.0.0.1:9", api_key: "tt_sim_unit"}',
        f'state: {{database: "{url}", lease: 30s, replica_id: {replica}}}',
        'notifiers: {hook: {urls: ["json://127.0.0.1:9/"]}}',
        "defaults: {notify: [hook], every: 1m}",
        "watches:",
        *(f"  - {{name: {w}, hashtag: x, every: {every.get(w, '1m')}}}" for w in watches),
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def url(pg_head: HeadPool) -> Iterator[str]:
    name = pg_head.take()
    yield pg_head.server.url(name)
    pg_head.give_back(name)


@pytest.fixture
async def build(url: str, tmp_path: Path) -> AsyncIterator[Build]:
    """Builds a replica (its id, its config's watches) as `watcher run` would, paused."""
    built: list[Daemon] = []

    async def make(replica: str, watches: list[str]) -> Daemon:
        path = tmp_path / replica / "watches.yaml"
        path.parent.mkdir()
        path.write_text(config(url, replica, watches), "utf-8")
        daemon = Daemon(path, {}, clock=lambda: NOW)
        settings = load_settings(path, {})
        daemon.build(settings)
        daemon.scheduler.start(paused=True)
        await daemon._schedule_all()
        built.append(daemon)
        return daemon

    yield make
    for daemon in built:
        daemon.scheduler.shutdown(wait=False)
        await daemon.runner.client.aclose()
        await daemon.async_store.close()


def jobs(daemon: Daemon) -> set[str]:
    return {job.id for job in daemon.scheduler.get_jobs()}


def leased(daemon: Daemon) -> dict[str, str]:
    """Live watch leases in the database: watch -> holder."""
    return {v.name.removeprefix(WATCH): v.holder for v in leases(daemon.store, WATCH) if v.live}


async def test_each_replica_has_jobs_only_for_the_watches_it_holds(build: Build) -> None:
    """The first replica holds and schedules everything; a second one starts with no job;
    after a step each, each has a job for exactly its half, and together every watch."""
    a = await build("A", W)
    assert jobs(a) == set(W)
    b = await build("B", W)
    assert b.replica.watches == set()
    assert jobs(b) == set()
    await a._rebalance()
    assert len(jobs(a)) == 5
    assert jobs(a) == a.replica.watches
    await b._rebalance()
    assert jobs(b) == b.replica.watches == set(W) - jobs(a)
    assert b.metrics.render().decode().count("watcher_watches 10.0") == 1


async def test_a_released_watch_is_scheduled_by_its_taker_from_its_last_poll(
    build: Build,
) -> None:
    """A replica that stops cleanly releases its watches; the other takes them at its next
    step and schedules each from its last poll by the first: at its turn if not due yet,
    within a step if never polled."""
    a = await build("A", W)
    b = await build("B", W)
    polled = PollRecord("w3", NOW - timedelta(seconds=10), 0, Outcome.SKIPPED)
    await a.async_store.apply_poll(polled, {})
    await a.replica.leave()
    await b._rebalance()
    assert jobs(b) == set(W)
    w3, w4 = b.scheduler.get_job("w3"), b.scheduler.get_job("w4")
    assert w3 is not None
    assert w4 is not None
    assert w3.next_run_time == NOW + timedelta(seconds=50), "A's poll 10 s ago, every 1m"
    assert NOW <= w4.next_run_time <= NOW + timedelta(seconds=b.replica.interval)


async def test_a_lost_watch_loses_its_job_at_the_next_step(build: Build) -> None:
    """A watch whose lease ran out and was taken by another replica: the taker schedules
    it, and the loser's next step removes its job (and holds() already refused it)."""
    a = await build("A", W)
    b = await build("B", W)
    with a.store.db.write() as s:  # as if A had not renewed w3 for a whole lease
        s.exec(
            update(LeaseRow)
            .where(col(LeaseRow.name) == watch_lease("w3"))
            .values(expires_at=NOW - timedelta(hours=1))
        )
    await b._rebalance()
    assert jobs(b) == {"w3"}
    assert "w3" in jobs(a), "A has not stepped since"
    await a._rebalance()
    assert "w3" not in jobs(a)
    assert not a.replica.holds("w3")
    assert jobs(a) == a.replica.watches
    assert leased(a)["w3"] == "B"


async def test_a_reload_on_replicas_follows_what_each_holds(build: Build, url: str) -> None:
    """A reload removes the job and the lease of a watch gone from the file; a new watch
    is scheduled by the replica that takes it, not by one at its share; a changed watch
    is rescheduled only by its holder."""
    a = await build("A", W)
    b = await build("B", W)
    await a._rebalance()
    await b._rebalance()
    held_a, held_b = sorted(a.replica.watches), sorted(b.replica.watches)
    gone_a, gone_b = held_a[0], held_b[0]

    def save(watches: list[str], every: dict[str, str] | None = None) -> None:
        for daemon, replica in ((a, "A"), (b, "B")):
            daemon.config_path.write_text(config(url, replica, watches, every), "utf-8")

    first = [w for w in W if w not in (gone_a, gone_b)] + ["new"]  # 9 watches: 5 each
    save(first)
    assert await a.reload()
    assert jobs(a) == (set(held_a) - {gone_a}) | {"new"}, "A at 4 of 5 takes the new one"
    assert gone_a not in leased(a)
    assert gone_b in jobs(b), "B has not reloaded yet"
    assert await b.reload()
    assert jobs(b) == set(held_b) - {gone_b}
    assert set(leased(b)) == set(first)

    second = [*first, "newer"]  # 10 watches: A holds its 5, B 4
    changed = held_b[1]
    save(second, every={changed: "5m"})
    assert await a.reload()
    assert "newer" not in jobs(a), "A is at its share: it doesn't take the new watch"
    assert changed not in jobs(a)
    assert await b.reload()
    assert "newer" in jobs(b)
    job = b.scheduler.get_job(changed)
    assert job is not None
    assert job.trigger.interval == timedelta(minutes=5)
    assert jobs(a) | jobs(b) == set(second)
    assert not jobs(a) & jobs(b)
