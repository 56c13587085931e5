"""The async store: every store call of the daemon's components runs in a worker thread,
never on the event loop (a blocking call there would stall every watch and the outbox).

A guard around the database's transactions fails the test if one opens on the loop's
thread; the runner polls the simulator, the outbox delivers, the gate holds and silences,
all through :class:`AsyncStore`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from watcher import notify
from watcher.config import Settings, parse_settings
from watcher.models import EventKind, ops_event
from watcher.outbox import Outbox
from watcher.render import Message
from watcher.runner import Runner, ops_routes
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import AsyncStore, Store
from watcher.store.control import Control
from watcher.store.database import Database
from watcher.trendtrack.client import TrendTrackClient

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def loop_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every database transaction opened on a thread running an event loop, by kind."""
    on_loop: list[str] = []
    read, write = Database.read, Database.write

    def guard(kind: str, real: object) -> object:
        def opened(self: Database) -> AbstractContextManager[Session]:
            try:
                asyncio.get_running_loop()
                on_loop.append(kind)
            except RuntimeError:
                pass  # a worker thread: where the store belongs
            return real(self)  # type: ignore[operator]

        return opened

    monkeypatch.setattr(Database, "read", guard("read", read))
    monkeypatch.setattr(Database, "write", guard("write", write))
    return on_loop


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with running_simulator(seed=3, rate_limit=100_000, credits=1_000_000) as handle:
        yield handle


def _settings(sim: SimHandle, tmp_path: Path) -> Settings:
    shops = sim.world()["shops"]
    assert isinstance(shops, list)
    text = f"""
version: 1
api: {{base_url: "{sim.base_url}", api_key: "{sim.api_key}"}}
state: {{database: "sqlite:///{tmp_path / "state.db"}"}}
notifiers:
  ops: {{urls: ["json://127.0.0.1:9/"]}}
  quiet: {{urls: ["json://127.0.0.1:9/"], quiet_hours: {{from: "00:00", to: "23:59"}}}}
ops_notify: [ops]
defaults: {{notify: [ops, quiet]}}
watches:
  - {{name: main, shop: "{shops[0]["id"]}"}}
"""
    return parse_settings(text, "watches.yaml", env={})


async def _sent(url: str, messages: Sequence[Message]) -> tuple[int, notify.SendResult]:
    return len(messages), notify.SendResult(ok=True, error=None, duration=0.0)


def test_polls_and_deliveries_never_touch_the_database_on_the_loop(
    sim: SimHandle, tmp_path: Path, loop_threads: list[str]
) -> None:
    """A baseline poll, a failed poll's ops bookkeeping, a delivery pass with quiet hours
    and a silence: every read and write ran in a worker thread."""
    settings = _settings(sim, tmp_path)
    store = Store(settings.state.database)
    Control(store).add_silence(NOW, NOW + timedelta(days=1), watch="main", kinds=["new_ad"])

    async def go() -> None:
        shared = AsyncStore(store)
        async with TrendTrackClient(settings.api.base_url, sim.api_key, max_retries=0) as api:
            runner = Runner(settings, shared, api, clock=lambda: NOW)
            for watch in settings.watches:
                await runner.poll(watch)
        event = ops_event(EventKind.WATCH_FAILING, "main", NOW, {"failures": 3})
        await shared.outbox.record(event, ops_routes(settings))
        outbox = Outbox(settings, shared, clock=lambda: NOW, send_all=_sent)
        report = await outbox.flush()
        assert report.sent >= 1
        assert await shared.outbox.depth() >= 0
        assert await shared.control.delivery_states()
        await shared.close()

    try:
        asyncio.run(go())
        assert [w.last_outcome for w in store.memory.watches()] == ["baseline"]
    finally:
        store.close()
    assert loop_threads == []


def test_the_guard_sees_a_blocking_call_on_the_loop(
    tmp_path: Path, loop_threads: list[str]
) -> None:
    """The guard itself: a sync store call made on the loop is caught."""
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")

    async def blocking() -> None:
        store.meta.get("anything")

    try:
        asyncio.run(blocking())
    finally:
        store.close()
    assert loop_threads == ["read"]


def test_of_wraps_a_store_once(tmp_path: Path) -> None:
    """AsyncStore.of wraps a sync store and hands an async one back as it is."""
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        wrapped = AsyncStore.of(store)
        assert wrapped.sync is store
        assert AsyncStore.of(wrapped) is wrapped
        assert repr(wrapped) == repr(store)
        assert threading.current_thread() is threading.main_thread()
    finally:
        store.close()
