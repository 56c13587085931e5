"""The daemon's health and metrics endpoints (``GET /healthz``, ``GET /metrics``), with the
dashboard (``watcher.dashboard``) mounted beside them.

The daemon owns a :class:`Health` (it calls ``tick`` on every scheduler loop and flips
``scheduler_running``) and a :class:`Metrics` (it reports polls, deliveries, outbox depth
and schedule lag). :func:`create_app` serves both as a Starlette app, and
:class:`HealthServer` runs it with uvicorn inside the daemon's own event loop: it binds
its socket itself (so a busy port is our ``HealthError``, not uvicorn's ``sys.exit``) and
never touches signal handlers, which belong to the daemon. Off unless ``health.port`` is
set; the only module that imports uvicorn and prometheus_client. With ``health.token``,
every route but ``/healthz`` needs the token (``watcher.dashboard.TokenGuard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watcher.config import HealthSettings
from watcher.dashboard import Source, TokenGuard, dashboard_routes
from watcher.errors import HealthError
from watcher.outbox import FlushReport
from watcher.poller import PollOutcome

logger = logging.getLogger("watcher.health")

DEFAULT_STALE_AFTER = timedelta(minutes=2)
STOP_TIMEOUT_SECONDS = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What ``/healthz`` answers: healthy or not, and why not."""

    ok: bool
    reasons: tuple[str, ...]
    last_tick: datetime | None
    tick_age_seconds: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "unhealthy",
            "reasons": list(self.reasons),
            "scheduler_running": "scheduler is not running" not in self.reasons,
            "last_tick": self.last_tick.isoformat() if self.last_tick else None,
            "tick_age_seconds": (
                round(self.tick_age_seconds, 3) if self.tick_age_seconds is not None else None
            ),
        }


class Health:
    """Liveness as the daemon reports it: the scheduler runs and its loop ticks.

    Healthy when ``scheduler_running`` is true and the last ``tick`` is at most
    ``stale_after`` old (by ``clock``). A loop that stopped ticking (a stuck poll, a
    blocked event loop) turns the container unhealthy so it gets restarted.
    """

    def __init__(
        self,
        *,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self.scheduler_running = False
        self.last_tick: datetime | None = None
        self.replica: dict[str, object] | None = None
        """This replica's id and leases, added to ``/healthz``'s answer when set."""

    def tick(self, now: datetime | None = None) -> None:
        """The scheduler loop is alive at ``now`` (default: the clock's now)."""
        self.last_tick = now or self.clock()

    def check(self, now: datetime | None = None) -> HealthReport:
        now = now or self.clock()
        reasons: list[str] = []
        if not self.scheduler_running:
            reasons.append("scheduler is not running")
        age: float | None = None
        if self.last_tick is None:
            reasons.append("the scheduler loop has not ticked yet")
        else:
            age = (now - self.last_tick).total_seconds()
            if age > self.stale_after.total_seconds():
                reasons.append(f"last scheduler tick {age:.0f}s ago")
        return HealthReport(not reasons, tuple(reasons), self.last_tick, age)


LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """The daemon's Prometheus metrics, in a registry of their own (not the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("watcher_polls", "Polls by outcome.", ["outcome"], registry=r)
        self.poll_duration = Histogram(
            "watcher_poll_duration_seconds",
            "How long a poll took.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.credits_spent = Counter(
            "watcher_credits_spent", "TrendTrack credits spent by polls.", registry=r
        )
        self.events = Counter("watcher_events", "Events recorded, by kind.", ["kind"], registry=r)
        self.deliveries = Counter(
            "watcher_deliveries",
            "Outbox deliveries by outcome (sent, failed = will retry, dead = gave up).",
            ["outcome"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "watcher_outbox_depth", "Deliveries waiting in the outbox.", registry=r
        )
        self.schedule_lag = Histogram(
            "watcher_schedule_lag_seconds",
            "How late a poll started after its scheduled time.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.watches = Gauge("watcher_watches", "Watches in the running config.", registry=r)
        self.credit_balance = Gauge(
            "watcher_credit_balance", "The TrendTrack credit balance last seen.", registry=r
        )
        self.delivery_states = Gauge(
            "watcher_delivery_state",
            "Outbox rows by delivery state (pending, held, sent, silenced, dead).",
            ["state"],
            registry=r,
        )
        for outcome in ("sent", "failed", "dead"):
            self.deliveries.labels(outcome=outcome)
        self.replica = Gauge(
            "watcher_replica",
            "This replica (1), by its id in the database's leases.",
            ["replica"],
            registry=r,
        )
        self.replicas = Gauge(
            "watcher_replicas", "Replicas with a live lease on the database.", registry=r
        )
        self.watches_held = Gauge(
            "watcher_watches_held", "Watches this replica holds the lease of.", registry=r
        )
        self.watch_held = Gauge(
            "watcher_watch_held",
            "1 for each watch this replica holds the lease of (it alone polls them).",
            ["watch"],
            registry=r,
        )
        self.outbox_held = Gauge(
            "watcher_outbox_held",
            "1 if this replica holds the outbox lease (it alone delivers), else 0.",
            registry=r,
        )
        self._held: set[str] = set()

    def observe_poll(self, outcome: PollOutcome) -> None:
        """Count one poll: its outcome, credits, events by kind and duration."""
        self.polls.labels(outcome=outcome.outcome.value).inc()
        if outcome.credits > 0:
            self.credits_spent.inc(outcome.credits)
        for event in outcome.events:
            self.events.labels(kind=event.kind.value).inc()
        if outcome.outcome.polled:
            self.poll_duration.observe(outcome.duration_ms / 1000)

    def observe_delivery(self, report: FlushReport) -> None:
        """Count one outbox pass's sent, failed (retried later) and dead deliveries."""
        for name, count in (
            ("sent", report.sent),
            ("failed", report.failed),
            ("dead", report.dead),
        ):
            if count > 0:
                self.deliveries.labels(outcome=name).inc(count)

    def set_delivery_states(self, counts: dict[str, int]) -> None:
        for state, count in counts.items():
            self.delivery_states.labels(state=state).set(count)

    def set_outbox_depth(self, depth: int) -> None:
        self.outbox_depth.set(depth)

    def observe_lag(self, seconds: float) -> None:
        """How late a scheduled poll started (negative values count as on time)."""
        self.schedule_lag.observe(max(seconds, 0.0))

    def set_watches(self, count: int) -> None:
        self.watches.set(count)

    def set_replica(
        self, replica: str, watches: Collection[str], *, delivers: bool, replicas: int
    ) -> None:
        """Which watches this replica holds, whether it delivers, how many replicas live."""
        self.replica.labels(replica=replica).set(1)
        self.replicas.set(replicas)
        self.watches_held.set(len(watches))
        self.outbox_held.set(1 if delivers else 0)
        held = set(watches)
        for gone in self._held - held:
            self.watch_held.remove(gone)
        for name in held - self._held:
            self.watch_held.labels(watch=name).set(1)
        self._held = held

    def set_credit_balance(self, balance: int | None) -> None:
        if balance is not None:
            self.credit_balance.set(balance)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))


def create_app(
    health: Health,
    metrics: Metrics,
    dashboard: Source | None = None,
    token: str | None = None,
) -> Starlette:
    """The ASGI app serving ``/healthz`` (200 or 503, JSON), ``/metrics`` and, given a
    ``dashboard`` source, the dashboard; with a ``token``, all but ``/healthz`` need it."""

    async def healthz(_request: Request) -> Response:
        report = health.check()
        body = report.as_json()
        if health.replica is not None:
            body["replica"] = health.replica
        return JSONResponse(body, status_code=200 if report.ok else 503)

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint, methods=["GET", "HEAD"]),
    ]
    if dashboard is not None:
        routes += dashboard_routes(dashboard)
    guard = [Middleware(TokenGuard, token=token)] if token else []
    return Starlette(routes=routes, middleware=guard)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: SIGTERM/SIGINT belong to the daemon."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise HealthError(f"cannot serve health on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


class HealthServer:
    """Serves an ASGI app on ``host:port`` as a task of the running event loop.

    ``async with HealthServer(app, host, port) as server:`` (or ``start``/``stop``).
    Port 0 picks a free port; ``server.port`` tells which.
    """

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.host = host
        self.port = port
        """The port served; the one actually bound once started (port 0 picks one)."""
        self._server = _Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                ws="none",
                http="h11",
                timeout_graceful_shutdown=int(STOP_TIMEOUT_SECONDS),
            )
        )
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind (raising ``HealthError`` if the port is taken) and start serving."""
        if self._task is not None:
            return
        self._socket = _bind(self.host, self.port)
        self.port = int(self._socket.getsockname()[1])
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._socket]), name="health-server"
        )
        self._task.add_done_callback(self._ended)
        logger.info("health, metrics and dashboard on %s (/healthz, /metrics, /)", self.url)

    async def stop(self) -> None:
        """Stop serving; bounded, never raises for a server that already ended."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_SECONDS + 1)
        except TimeoutError:
            task.cancel()
            logger.warning("health server did not stop in time; cancelled")
        except Exception:  # already logged by _ended; stopping must not fail the daemon
            logger.debug("health server had ended with an error", exc_info=True)
        finally:
            if self._socket is not None:
                self._socket.close()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._server.should_exit:
            return
        error = task.exception()
        if error is not None:
            logger.error("health server stopped: %s", error, exc_info=error)
        else:
            logger.error("health server stopped unexpectedly")

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_health(
    settings: HealthSettings,
    health: Health,
    metrics: Metrics,
    dashboard: Source | None = None,
) -> HealthServer | None:
    """Start the endpoints if ``health.port`` is set; None when they are off."""
    if settings.port is None:
        return None
    token = settings.token.get_secret_value() if settings.token else None
    app = create_app(health, metrics, dashboard, token)
    server = HealthServer(app, settings.host, settings.port)
    await server.start()
    return server
