"""The health and metrics endpoints: liveness from the scheduler's ticks, Prometheus text."""

from __future__ import annotations

import signal
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from watcher.config import HealthSettings
from watcher.health import (
    Health,
    HealthError,
    HealthServer,
    Metrics,
    create_app,
    start_health,
)
from watcher.models import Event, EventKind
from watcher.outbox import FlushReport
from watcher.planner import Outcome
from watcher.poller import PollOutcome

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for Health."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _event(kind: EventKind, n: int) -> Event:
    return Event(f"acme|{kind.value}|{n}", kind, "acme", T0)


def _healthy(clock: Clock) -> Health:
    health = Health(stale_after=timedelta(seconds=60), clock=clock)
    health.scheduler_running = True
    health.tick()
    return health


def test_health_needs_a_running_scheduler_and_a_recent_tick() -> None:
    """Unhealthy before start, healthy after a tick, unhealthy once ticks go stale."""
    clock = Clock()
    health = Health(stale_after=timedelta(seconds=60), clock=clock)
    report = health.check()
    assert not report.ok
    assert report.reasons == ("scheduler is not running", "the scheduler loop has not ticked yet")
    health.scheduler_running = True
    health.tick()
    assert health.check().ok
    clock.now += timedelta(seconds=60)
    assert health.check().ok
    clock.now += timedelta(seconds=1)
    report = health.check()
    assert not report.ok
    assert report.reasons == ("last scheduler tick 61s ago",)
    health.tick(clock.now)
    health.scheduler_running = False
    assert health.check().reasons == ("scheduler is not running",)


async def test_healthz_answers_200_or_503_with_reasons() -> None:
    """GET /healthz: 200 {"status": "ok"} when healthy, 503 with the reasons when not."""
    clock = Clock()
    health = _healthy(clock)
    app = create_app(health, Metrics())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://watcher") as client:
        ok = await client.get("/healthz")
        assert ok.status_code == 200
        assert ok.json()["status"] == "ok"
        assert ok.json()["scheduler_running"] is True
        clock.now += timedelta(minutes=5)
        stale = await client.get("/healthz")
        assert stale.status_code == 503
        body = stale.json()
        assert body["status"] == "unhealthy"
        assert body["reasons"] == ["last scheduler tick 300s ago"]
        assert body["last_tick"] == T0.isoformat()
        missing = await client.get("/nope")
        assert missing.status_code == 404


async def test_metrics_expose_the_counters_after_observations() -> None:
    """GET /metrics serves Prometheus text with polls, credits, events, deliveries, gauges."""
    metrics = Metrics()
    metrics.observe_poll(
        PollOutcome(
            "acme",
            Outcome.OK,
            events=(_event(EventKind.NEW_AD, 1), _event(EventKind.NEW_AD, 2)),
            credits=4,
            items=3,
            duration_ms=850,
        )
    )
    metrics.observe_poll(PollOutcome("acme", Outcome.FAILED))
    metrics.observe_poll(PollOutcome("acme", Outcome.SKIPPED))
    metrics.observe_delivery(FlushReport(sent=2, failed=1, dead=0))
    metrics.set_outbox_depth(5)
    metrics.observe_lag(3.2)
    metrics.observe_lag(-0.5)
    metrics.set_watches(7)
    metrics.set_credit_balance(9000)
    metrics.set_credit_balance(None)
    app = create_app(_healthy(Clock()), metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://watcher") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in (
        'watcher_polls_total{outcome="ok"} 1.0',
        'watcher_polls_total{outcome="failed"} 1.0',
        'watcher_polls_total{outcome="skipped"} 1.0',
        "watcher_credits_spent_total 4.0",
        'watcher_events_total{kind="new_ad"} 2.0',
        'watcher_deliveries_total{outcome="sent"} 2.0',
        'watcher_deliveries_total{outcome="failed"} 1.0',
        'watcher_deliveries_total{outcome="dead"} 0.0',
        "watcher_outbox_depth 5.0",
        "watcher_schedule_lag_seconds_count 2.0",
        "watcher_schedule_lag_seconds_sum 3.2",
        "watcher_watches 7.0",
        "watcher_credit_balance 9000.0",
        "watcher_poll_duration_seconds_count 2.0",
    ):
        assert line in text.splitlines(), line


def test_each_metrics_object_has_its_own_registry() -> None:
    """Two Metrics never collide (no global registry), so tests and reloads are safe."""
    first, second = Metrics(), Metrics()
    first.set_watches(3)
    assert b"watcher_watches 3.0" in first.render()
    assert b"watcher_watches 0.0" in second.render()


async def test_served_for_real_on_a_free_loopback_port() -> None:
    """HealthServer serves both endpoints over TCP inside this loop, then stops cleanly."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    metrics = Metrics()
    metrics.set_watches(2)
    server = HealthServer(create_app(_healthy(Clock(datetime.now(UTC))), metrics), "127.0.0.1", 0)
    async with server:
        assert server.port != 0
        assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            health = await client.get("/healthz")
            assert health.status_code == 200, health.text
            assert health.json()["status"] == "ok"
            text = (await client.get("/metrics")).text
            assert "watcher_watches 2.0" in text
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(f"{server.url}/healthz")


async def test_a_taken_port_is_a_health_error() -> None:
    """Binding a port already in use raises HealthError (not uvicorn's sys.exit)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(create_app(Health(), Metrics()), "127.0.0.1", port)
        with pytest.raises(HealthError, match=f"127.0.0.1:{port}"):
            await server.start()
        await server.stop()


async def test_start_health_is_off_without_a_port() -> None:
    """No `health.port` in the config: no server; with one, it serves until stopped."""
    assert await start_health(HealthSettings(None, "127.0.0.1"), Health(), Metrics()) is None
    server = await start_health(HealthSettings(0, "127.0.0.1"), Health(), Metrics())
    assert server is not None
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{server.url}/healthz")
        assert response.status_code == 503
    finally:
        await server.stop()
