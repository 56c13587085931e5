"""``watcher run``: the long-running service.

One APScheduler 3 ``AsyncIOScheduler`` job per watch (``coalesce``, ``max_instances=1``,
a ``misfire_grace_time`` sized to the interval, jitter so many watches don't fire in the
same second), one shared API client, the outbox worker in the same loop, hot reload of
``watches.yaml`` as a diff of watches (``reload.py``: file watching and SIGHUP), and a
bounded graceful stop on SIGTERM/SIGINT with a one-line summary. With ``health.port`` set
(or ``$WATCHER_HEALTH_PORT``), ``/healthz`` and ``/metrics`` are served in the same loop.

Several replicas may share one PostgreSQL database (``watcher.replicas``): each has jobs
only for the watches it holds the lease of, and delivers only while it holds the outbox
lease; a step every ``state.lease / 3`` renews, rebalances and takes over what a dead
replica left, and the scheduler follows it (:meth:`Daemon._follow_holdings`: a job added
for each watch taken, from its last poll by whichever replica; removed for each watch
released or lost). A job still polls only while :meth:`Replica.holds` says so (the lease
may run out between steps). On SQLite the one daemon of a file holds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watcher import app, dblock
from watcher.config import Settings, Watch
from watcher.dashboard import Source
from watcher.errors import WatcherError
from watcher.health import Health, HealthServer, Metrics, start_health
from watcher.outbox import FlushReport, Outbox
from watcher.planner import Outcome
from watcher.poller import PollOutcome
from watcher.reload import REJECTED_VERSION, Reloader
from watcher.replicas import Replica, next_step
from watcher.runner import Runner, utcnow
from watcher.schedule import MAX_START_SPREAD, freshness_ttl, poll_timeout
from watcher.store import AsyncStore
from watcher.triggers import build_trigger, first_run_time

logger = logging.getLogger("watcher.daemon")

TICK_SECONDS = 5.0
STOP_GRACE_SECONDS = 20.0
FLUSH_GRACE_SECONDS = 10.0
PRUNE_EVERY = timedelta(hours=6)
SUMMARY_EVERY = timedelta(hours=1)  # the periodic summary line at INFO
PollHook = Callable[[PollOutcome], None]


@dataclass
class Totals:
    """What the daemon did, for the summary line at exit."""

    polls: int = 0
    failed: int = 0
    events: int = 0
    credits: int = 0

    def add(self, outcome: PollOutcome) -> None:
        if not outcome.outcome.polled:
            return
        self.polls += 1
        self.failed += outcome.outcome.failure
        self.events += len(outcome.events)
        self.credits += outcome.credits


@dataclass
class Daemon:
    """The service; ``run()`` returns the exit code."""

    config_path: Path
    env: Mapping[str, str]
    clock: Callable[[], datetime] = utcnow
    on_poll: list[PollHook] = field(default_factory=list)
    settings: Settings | None = None
    stop_grace: float = STOP_GRACE_SECONDS
    db_lock: dblock.DatabaseLock | None = None
    exit_code: int = 0

    def __post_init__(self) -> None:
        self.stop = asyncio.Event()
        self.totals = Totals()
        self.in_flight: set[asyncio.Task[Any]] = set()
        self.polling: set[str] = set()
        self.last_tick: datetime | None = None
        self.lag_seconds: list[float] = []
        self.health = Health(clock=self.clock)
        self.metrics = Metrics()
        self.health_server: HealthServer | None = None
        self._delivered = FlushReport()
        self.reloader = Reloader(self)
        self._tasks: set[asyncio.Future[object]] = set()
        self._by_name: tuple[Settings | None, dict[str, Watch]] = (None, {})
        self.holdings = asyncio.Lock()
        """Held while the jobs are made to follow the leases, or a reload changes them."""

    # --- life cycle ---------------------------------------------------------------------

    async def run(self) -> int:
        if self.settings is None:
            self.settings = app.settings_from(self.config_path, self.env)
        else:
            app.register_settings_secrets(self.settings)
        settings = self.settings
        self.health_server = await start_health(
            settings.health, self.health, self.metrics, self._dashboard_source()
        )
        try:
            return await self._serve(settings)
        finally:
            if self.health_server is not None:
                await self.health_server.stop()

    def _dashboard_source(self) -> Source:
        """The dashboard reads the current config and the store (None until built)."""
        return Source(lambda: self.settings, lambda: getattr(self, "store", None), self.clock)

    def build(self, settings: Settings) -> None:
        """Create the store, client, runner, outbox and (unstarted) scheduler."""
        self.settings = settings
        client = app.daemon_client(settings)  # first: a missing key fails before the store opens
        self.db_lock = dblock.acquire(settings.state.database, purpose="`watcher run`")
        self.store = app.open_store(settings)
        self.async_store = store = AsyncStore(self.store)
        self.replica = Replica(store, settings.state.lease, settings.state.replica_id)
        self.store.fence = self.replica.leases.fence  # stored only by the watch's holder
        self.replica.start(self._wanted())  # before any job fires; a store failure stops here
        self.runner = Runner(
            settings, store, client, clock=self.clock, freshness_ttl=freshness_ttl(settings)
        )
        self.outbox = Outbox(
            settings,
            store,
            app.renderer_for(settings),
            clock=self.clock,
            may_send=self.replica.delivers,
        )
        self.scheduler = AsyncIOScheduler(timezone=settings.timezone)
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)

    async def _serve(self, settings: Settings) -> int:
        self.build(settings)
        store = self.async_store
        started = self.clock()
        tasks: list[asyncio.Task[Any]] = []
        try:
            self._install_signals()
            self.scheduler.start()
            self.health.scheduler_running = True
            await self._schedule_all()
            self._report_replica()
            await store.memory.mark_removed([w.name for w in settings.watches], self.clock())
            await store.meta.set(REJECTED_VERSION, "")
            tasks = [
                asyncio.create_task(self.outbox.run(self.stop), name="outbox"),
                asyncio.create_task(self.reloader.watch_config(), name="config-watch"),
                asyncio.create_task(self._ticker(), name="ticker"),
                asyncio.create_task(self._sharing(), name="leases"),
            ]
            logger.info(
                "watcher running: %d watches, database %s, replica %s holding %d",
                len(self._wanted()),
                store,
                self.replica.id,
                len(self.replica.watches),
            )
            await self.stop.wait()
        finally:
            await self._shutdown(tasks, started)
            await self.runner.client.aclose()
            await store.close()
            if self.db_lock is not None:
                self.db_lock.release()  # after the store: see dblock
        return self.exit_code

    def request_stop(self) -> None:
        self.stop.set()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._background(self.reload()))

    def _background(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self, tasks: list[asyncio.Task[Any]], started: datetime) -> None:
        """Stop scheduling, let polls in flight finish (bounded), flush what can be sent."""
        # Pause first: shutting APScheduler down cancels the jobs it is running at once,
        # so polls in flight are waited for (as the log says), then cancelled, quietly.
        if self.scheduler.running:
            self.scheduler.pause()
        self.health.scheduler_running = False
        if self.in_flight:
            logger.info("waiting up to %.0fs for %d polls", self.stop_grace, len(self.in_flight))
            _done, pending = await asyncio.wait(self.in_flight, timeout=self.stop_grace)
            for task in pending:
                task.cancel()  # safe: a poll's results are stored in one transaction or not
            if pending:
                await asyncio.wait(pending, timeout=5)
                logger.info(
                    "cancelled %d polls still running after %.0fs", len(pending), self.stop_grace
                )
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        # The outbox worker ends after its current pass (never cut mid-send, which would
        # send that message again); one last pass sends what the last polls recorded.
        worker = [task for task in tasks if task.get_name() == "outbox"]
        if worker:
            await asyncio.wait(worker, timeout=FLUSH_GRACE_SECONDS)
        rest: list[asyncio.Future[Any]] = [*tasks, *self._tasks]
        for future in rest:
            future.cancel()  # a no-op for those already done
        await asyncio.gather(*rest, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbox.flush(), FLUSH_GRACE_SECONDS)
        await self.replica.leave()  # the other replicas take over at their next step
        t = self.totals
        uptime = self.clock() - started
        queued = await self.async_store.outbox.depth()
        logger.info(
            "watcher stopped after %s: %d polls (%d failed), %d events, %d credits, "
            "%d delivered, %d pending",
            str(uptime).split(".")[0],
            t.polls,
            t.failed,
            t.events,
            t.credits,
            self.outbox.totals.sent,
            queued,
        )

    # --- scheduling ---------------------------------------------------------------------

    async def _schedule_all(self) -> None:
        """A job for each watch held after the first step (every enabled one on SQLite),
        overdue ones over the whole start spread: the jobs follow the leases, as after
        every step."""
        async with self.holdings:
            await self._follow_holdings(random.random)
        self.metrics.set_watches(len(self._wanted()))

    def _add_job(
        self,
        watch: Watch,
        settings: Settings,
        last_poll: datetime | None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """Schedule ``watch`` (replacing its job if it has one): first from its last poll."""
        trigger = build_trigger(watch, settings)
        every = watch.schedule.every
        grace = int(every.total_seconds()) if every is not None else 3600
        self.scheduler.add_job(
            self._poll_job,
            trigger,
            args=[watch.name],
            id=watch.name,
            name=watch.name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(grace, 30),
            next_run_time=first_run_time(watch, trigger, last_poll, self.clock(), rng=rng),
        )

    def _remove_job(self, name: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(name)

    def _watch(self, name: str) -> Watch | None:
        """The enabled watch called ``name`` in the current config (a dict per config:
        a poll of one of 10,000 watches doesn't scan them all)."""
        settings = self.settings
        if settings is None:
            return None
        if self._by_name[0] is not settings:
            self._by_name = (settings, {w.name: w for w in settings.watches if w.enabled})
        return self._by_name[1].get(name)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if not self.replica.holds(event.job_id):
            return  # another replica's watch: this job only looks and returns
        now = self.clock()
        for planned in event.scheduled_run_times:
            lag = max((now - planned).total_seconds(), 0.0)
            self.lag_seconds.append(lag)
            self.metrics.observe_lag(lag)
        del self.lag_seconds[:-1000]

    async def _poll_job(self, name: str) -> None:
        if self.stop.is_set():
            return
        watch = self._watch(name)
        if watch is None or not self.replica.holds(name):
            return
        task = asyncio.current_task()
        if task is not None:
            self.in_flight.add(task)
        self.polling.add(name)
        try:
            outcome = await self._poll(watch)
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise
            logger.info("poll watch=%s cancelled at stop", watch.name)
            return  # stopping: the poll stored all of its results or none; no traceback
        finally:
            self.polling.discard(name)
            if task is not None:
                self.in_flight.discard(task)
        self.totals.add(outcome)
        self.metrics.observe_poll(outcome)
        self.metrics.set_credit_balance(self.runner.client.meter.balance)
        for hook in self.on_poll:
            hook(outcome)
        if outcome.events:
            self.outbox.wakeup.set()

    async def _poll(self, watch: Watch) -> PollOutcome:
        """One poll under a timeout; a hanging or crashing watch never stalls the others."""
        try:
            async with asyncio.timeout(poll_timeout(watch)):
                return await self.runner.poll(watch)
        except TimeoutError:
            logger.warning("poll watch=%s timed out after %.0fs", watch.name, poll_timeout(watch))
            return PollOutcome(watch.name, Outcome.FAILED)
        except WatcherError as exc:  # a store or template error: this watch, this time
            logger.error("poll watch=%s failed: %s", watch.name, exc)  # noqa: TRY400
            return PollOutcome(watch.name, Outcome.FAILED)
        except Exception:  # the one broad except: one bad watch can't kill the daemon
            logger.exception("poll watch=%s crashed", watch.name)
            return PollOutcome(watch.name, Outcome.FAILED)

    async def _summary(self, since: Totals, sent: int, period: timedelta) -> None:
        """The periodic one-line summary at INFO (per-poll lines of idle polls are DEBUG)."""
        t = self.totals
        pending = await self.async_store.outbox.depth()
        logger.info(
            "last %s: %d polls (%d failed), %d events, %d credits, %d delivered, %d pending",
            str(period).split(".")[0],
            t.polls - since.polls,
            t.failed - since.failed,
            t.events - since.events,
            t.credits - since.credits,
            self.outbox.totals.sent - sent,
            pending,
        )

    def _database_gone(self) -> bool:
        """Stop, with a clear error, if the database file was deleted or replaced.

        Running on would write to a file nobody can open again: the pending alerts and
        every watch's memory would be lost at the next start, silently.
        """
        change = self.db_lock.file_changed() if self.db_lock is not None else None
        if change is None:
            return False
        logger.error(
            "the database file %s was %s while watcher ran; stopping so that nothing is "
            "lost silently (restore the file, or start again for a fresh database)",
            self.db_lock.path if self.db_lock else "?",
            change,
        )
        self.exit_code = 1
        self.stop.set()
        return True

    async def _ticker(self) -> None:
        """Liveness tick, metrics, pause recovery, retention, the periodic summary."""
        last_prune: datetime | None = None
        summary_at, summary_totals, summary_sent = self.clock(), replace(self.totals), 0
        while not self.stop.is_set():
            if self._database_gone():
                return
            now = self.clock()
            self.last_tick = now
            self.health.tick(now)
            await self._report_metrics()
            if now - summary_at >= SUMMARY_EVERY:
                await self._summary(summary_totals, summary_sent, now - summary_at)
                summary_at, summary_totals = now, replace(self.totals)
                summary_sent = self.outbox.totals.sent
            try:
                if self.runner.pause is not None:
                    await self.runner.resume_if_possible()
                due = last_prune is None or now - last_prune >= PRUNE_EVERY
                if due and self.replica.delivers():  # one replica prunes
                    last_prune = now
                    await self._prune(now)
            except WatcherError as exc:  # the tick (and so /healthz) must outlive a bad pass
                logger.error("maintenance failed: %s", exc)  # noqa: TRY400
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), TICK_SECONDS)

    # --- sharing the work with other replicas -------------------------------------------

    def _wanted(self) -> list[str]:
        settings = self.settings
        return [w.name for w in settings.watches if w.enabled] if settings else []

    async def _sharing(self) -> None:
        """Renew and rebalance the leases every ``lease / 3`` (on a fixed beat:
        :func:`watcher.replicas.next_step`) until stopped."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self.stop.is_set():
            due = next_step(due, self.replica.interval, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), due - loop.time())
            if self.stop.is_set():
                return
            await self._rebalance()

    async def _rebalance(self, spread: float | None = None) -> None:
        """One step of the replica, then the jobs follow the leases it holds.

        Watches newly taken start from their last poll (by whichever replica): at once if
        overdue, else at their turn. ``spread``: the fraction of the start spread over
        which overdue ones start; by default within a step (watches taken over from a dead
        replica are all overdue, and must not wait the whole start spread)."""
        replica = self.replica
        scale = min(1.0, replica.interval / MAX_START_SPREAD) if spread is None else spread
        async with self.holdings:
            got = await replica.step(self._wanted(), busy=self.polling)
            await self._follow_holdings(lambda: random.random() * scale)
        if got and replica.outbox:
            self.outbox.wakeup.set()
        self._report_replica()

    async def _follow_holdings(self, rng: Callable[[], float]) -> None:
        """Jobs for exactly the enabled watches this replica holds: added for watches
        taken (first run from their last poll, ``rng`` spreading the overdue), removed
        for watches released, lost or gone from the config. Under ``self.holdings``."""
        held = self.replica.watches
        scheduled = {job.id for job in self.scheduler.get_jobs()}
        for name in sorted(scheduled - held):
            self._remove_job(name)
        new = sorted(n for n in held - scheduled if self._watch(n) is not None)
        if not new:
            return
        leases = self.replica.leases
        last = await self.async_store.run_apart(lambda _store: leases.last_polls(new))
        settings = self.settings
        if settings is None:
            return
        for name in new:
            watch = self._watch(name)  # the config may have been reloaded meanwhile
            if watch is not None and name in self.replica.watches:
                self._add_job(watch, settings, last.get(name), rng=rng)

    def _report_replica(self) -> None:
        replica = self.replica
        self.metrics.set_replica(
            replica.id, replica.watches, delivers=replica.outbox, replicas=replica.replicas
        )
        self.health.replica = {
            "id": replica.id,
            "watches_held": len(replica.watches),
            "delivers": replica.outbox,
            "replicas": replica.replicas,
        }

    async def _prune(self, now: datetime) -> None:
        settings = self.settings
        if settings is None:
            return
        removed = await self.async_store.prune(
            now,
            retention=settings.state.retention,
            grace=settings.state.removed_watch_grace,
        )
        if removed:
            logger.info("retention: pruned %d rows", removed)

    async def _report_metrics(self) -> None:
        """Deliveries since the last report, the outbox depth and the balance last seen."""
        totals, seen = self.outbox.totals, self._delivered
        self.metrics.observe_delivery(
            FlushReport(
                totals.sent - seen.sent, totals.failed - seen.failed, totals.dead - seen.dead
            )
        )
        self._delivered = totals
        self.metrics.set_outbox_depth(await self.async_store.outbox.depth())
        states = await self.outbox.gate.control.delivery_states()
        self.metrics.set_delivery_states(states)
        self.metrics.set_credit_balance(self.runner.client.meter.balance)

    # --- hot reload ---------------------------------------------------------------------

    async def reload(self) -> bool:
        """Apply the config file as a diff; keep the last good one if it is invalid."""
        return await self.reloader.reload()
