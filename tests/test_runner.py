"""The runner's guards against the simulator over HTTP: budget shedding, credit and auth
pauses, and ops events that fire once per episode, never once per poll."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from tests.store_helpers import record_credits
from watcher.config import Settings, parse_settings
from watcher.models import EventKind
from watcher.runner import Runner
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import Store
from watcher.trendtrack.client import TrendTrackClient


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with running_simulator(seed=5, rate_limit=100_000, credits=1_000_000) as handle:
        yield handle


def _settings(sim: SimHandle, database: str, extra: str = "") -> Settings:
    shops = sim.world()["shops"]
    assert isinstance(shops, list)
    text = f"""
version: 1
api: {{base_url: "{sim.base_url}", api_key: "{sim.api_key}"}}
state: {{database: "{database}"}}
notifiers: {{ops: {{urls: ["json://127.0.0.1:9/"]}}}}
ops_notify: [ops]
ops: {{failing_after: 2, credits_low_below: 1000}}
defaults: {{notify: [ops]}}
{extra}
watches:
  - {{name: main, shop: "{shops[0]["id"]}"}}
  - {{name: extra, shop: "{shops[1]["id"]}", priority: low}}
"""
    return parse_settings(text, "watches.yaml", env={})


@pytest.fixture
def stores() -> Iterator[Callable[[Settings], Store]]:
    """Opens the settings' store (on SQLite or PostgreSQL); closes them all at the end."""
    made: list[Store] = []

    def open_store(settings: Settings) -> Store:
        made.append(Store(settings.state.database))
        return made[-1]

    yield open_store
    for store in made:
        store.close()


def _ops(store: Store, kind: EventKind) -> int:
    return sum(1 for v in store.outbox.events() if v.event.kind == kind)


def _run(settings: Settings, store: Store, key: str, rounds: int = 2, **client: int) -> Runner:
    async def go() -> Runner:
        async with TrendTrackClient(settings.api.base_url, key, max_retries=0, **client) as api:
            runner = Runner(settings, store, api)
            for _ in range(rounds):
                runner.forget_freshness()
                for watch in settings.watches:
                    await runner.poll(watch)
            return runner

    return asyncio.run(go())


def test_low_priority_polls_are_shed_over_budget(
    sim: SimHandle, db_url: str, stores: Callable[[Settings], Store]
) -> None:
    """A month forecast over budget sheds `priority: low` polls and tells ops once."""
    settings = _settings(sim, db_url, "budget: {monthly_credits: 100}")
    store = stores(settings)
    record_credits(store, datetime.now(UTC), 5000, None)
    _run(settings, store, sim.api_key)
    watches = {w.name: w for w in store.memory.watches()}
    assert watches["main"].last_outcome == "baseline"
    assert "extra" not in watches, "the low-priority watch never polled"
    assert _ops(store, EventKind.BUDGET_EXCEEDED) == 1


def test_credits_low_fires_once(
    sim: SimHandle, db_url: str, stores: Callable[[Settings], Store]
) -> None:
    """A balance under credits_low_below gives one credits_low, not one per poll."""
    settings = _settings(sim, db_url)
    store = stores(settings)
    sim.set_credits(600)
    try:
        _run(settings, store, sim.api_key, rounds=3)
    finally:
        sim.set_credits(1_000_000)
    assert _ops(store, EventKind.CREDITS_LOW) == 1


def test_insufficient_credits_pause_until_refilled(
    sim: SimHandle, db_url: str, stores: Callable[[Settings], Store]
) -> None:
    """402 pauses polling with one credits_exhausted; a refill lifts the pause."""
    settings = _settings(sim, db_url)
    store = stores(settings)
    sim.set_credits(0)
    try:
        runner = _run(settings, store, sim.api_key)
        assert runner.pause is not None
        assert runner.pause.reason == "credits"
        assert _ops(store, EventKind.CREDITS_EXHAUSTED) == 1
    finally:
        sim.set_credits(1_000_000)

    async def resume() -> bool:
        async with TrendTrackClient(settings.api.base_url, sim.api_key) as api:
            runner.client = api
            return await runner.resume_if_possible()

    assert asyncio.run(resume())
    assert runner.pause is None


def test_rejected_key_pauses_until_the_config_changes(
    sim: SimHandle, db_url: str, stores: Callable[[Settings], Store]
) -> None:
    """401 pauses every watch after one auth_rejected; a config change lifts it."""
    settings = _settings(sim, db_url)
    store = stores(settings)
    runner = _run(settings, store, "tt_live_wrong", rounds=3)
    assert runner.pause is not None
    assert runner.pause.reason == "auth"
    assert _ops(store, EventKind.AUTH_REJECTED) == 1
    assert asyncio.run(runner.resume_if_possible(config_changed=True))


def test_failing_watch_alerts_once_then_recovers_once(
    sim: SimHandle, db_url: str, stores: Callable[[Settings], Store]
) -> None:
    """Consecutive failures give one watch_failing; the next success one watch_recovered."""
    settings = _settings(sim, db_url)
    store = stores(settings)
    sim.faults(1.0, ["500"])
    try:
        _run(settings, store, sim.api_key, rounds=4)
    finally:
        sim.faults(0.0, [])
    assert _ops(store, EventKind.WATCH_FAILING) == 2  # one per watch, not one per poll
    _run(settings, store, sim.api_key, rounds=2)
    assert _ops(store, EventKind.WATCH_RECOVERED) == 2
    assert _ops(store, EventKind.WATCH_FAILING) == 2
