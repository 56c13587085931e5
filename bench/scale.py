"""Benchmark 4: the real daemon (APScheduler jobs) with 1,000 and 10,000 watches.

``Daemon(config_path, env)`` runs in this process against a simulator child process;
the schedule is compressed (watches every few seconds instead of hours) so a bounded
window holds many rounds. Every watch starts with a stored baseline at the current data
refresh (written straight into the state database: 10,000 real baselines would take
minutes), so the window measures the steady state between refreshes: each poll is the
free refresh gate plus watcher's own bookkeeping, the part that scales with the number
of watches.

Measured per run: schedule lag (APScheduler's actual start minus planned start, from a
listener on the daemon's scheduler), the wall time of each poll (``Runner.poll``, which
includes waiting for the event loop and the store's threads), the most polls in flight,
polls completed per second (``on_poll`` hook), and CPU (this process's user+system time
over wall time; the simulator's own process is not counted).
A run "bends" when polls/s stops following the demand (watches / interval) and lag grows.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from sqlalchemy import insert

from bench.sim import WATCHER_KEY, serve
from bench.stats import percentiles
from watcher.config import Watch, load_settings
from watcher.daemon import Daemon
from watcher.poller import CAPABILITY_KEY, PollOutcome
from watcher.simulator.testing import SimHandle
from watcher.store import Store
from watcher.store.tables import WatchRow

RUNS = ((1_000, 10), (1_000, 5), (10_000, 60))
"""(watches, interval seconds): demand of 100, 200 and 167 polls/s."""
WINDOW = 20.0


def _targets(sim: SimHandle, count: int) -> list[str]:
    """``count`` watch entries cycling through the world's shops, handles and hashtags."""
    world = sim.world()
    shops = [f'shop: "{s["id"]}"' for s in world["shops"]]  # type: ignore[union-attr]
    handles = [f'handle: "@{p["handle"]}"' for p in world["profiles"]]  # type: ignore[union-attr]
    tags = [f'hashtag: "{t}"' for t in world["hashtags"]]  # type: ignore[union-attr]
    pool = [*shops, *handles, *tags]
    return [f"  - {{name: w{n}, {pool[n % len(pool)]}}}" for n in range(count)]


def config(sim: SimHandle, db: Path, count: int, every: int, extra: str = "") -> str:
    """A watches.yaml of ``count`` watches polled every ``every`` seconds."""
    lines = [
        "version: 1",
        f'api: {{base_url: "{sim.base_url}", api_key: "{WATCHER_KEY}",'
        " max_requests_per_minute: 1000000, max_concurrency: 16}",
        f'state: {{database: "sqlite:///{db}"}}',
        'notifiers: {hook: {urls: ["json://127.0.0.1:9/"]}}',
        f"defaults: {{notify: [hook], every: {every}s}}",
        extra,
        "watches:",
        *_targets(sim, count),
    ]
    return "\n".join(line for line in lines if line) + "\n"


def seed_baselines(path: Path, sim: SimHandle) -> None:
    """Store every watch's baseline at the current refresh, as a first poll would."""
    settings = load_settings(path, {})
    response = httpx.get(
        f"{sim.base_url}/v1/system/freshness",
        headers={"Authorization": f"Bearer {WATCHER_KEY}"},
        timeout=30,
    )
    response.raise_for_status()
    refresh = str(response.json()["data"]["latestReadyDate"])
    now = datetime.now(UTC)
    store = Store(settings.state.database)
    rows = [
        {
            "name": w.name,
            "fingerprint": w.fingerprint,
            "has_baseline": True,
            "baseline_at": now,
            "watermark": now,
            "refresh": refresh,
            "exact": True,
        }
        for w in settings.watches
    ]
    with store.engine.begin() as connection:
        connection.execute(insert(WatchRow), rows)
    store.meta.set(CAPABILITY_KEY, "1")
    store.close()


async def _drive(path: Path, window: float) -> dict[str, object]:
    daemon = Daemon(path, {})
    polls: list[PollOutcome] = []
    lags: list[float] = []
    daemon.on_poll.append(polls.append)

    def on_submitted(event: JobSubmissionEvent) -> None:
        now = datetime.now(UTC)
        lags.extend(max((now - t).total_seconds(), 0.0) for t in event.scheduled_run_times)

    durations: list[float] = []
    in_flight: list[int] = []

    async def drive() -> tuple[float, float, int]:
        # The daemon has no "started" event to wait on; its scheduler appears in run().
        while not hasattr(daemon, "scheduler"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        daemon.scheduler.add_listener(on_submitted, EVENT_JOB_SUBMITTED)
        poll = daemon.runner.poll

        async def timed(watch: Watch, *, dry_run: bool = False) -> PollOutcome:
            begin = time.perf_counter()
            try:
                return await poll(watch, dry_run=dry_run)
            finally:
                durations.append(time.perf_counter() - begin)

        daemon.runner.poll = timed  # type: ignore[method-assign]
        cpu0, wall0, done0 = _cpu(), time.perf_counter(), len(polls)
        while time.perf_counter() - wall0 < window:
            in_flight.append(len(daemon.in_flight))
            await asyncio.sleep(0.5)
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
        daemon.request_stop()
        return cpu, wall, len(polls) - done0

    driver = asyncio.create_task(drive())
    code = await daemon.run()
    cpu, wall, done = await driver
    return {
        "exit_code": code,
        "polls": done,
        "polls_per_second": round(done / wall, 1),
        "cpu": round(cpu / wall, 2),
        "lag_seconds": percentiles(lags),
        "poll_seconds": percentiles(durations),
        "max_in_flight": max(in_flight, default=0),
        "outcomes": {o: sum(p.outcome == o for p in polls) for o in {p.outcome for p in polls}},
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _quiet_cancelled_jobs() -> None:
    """At stop the daemon cancels the polls still queued after its grace period, and
    APScheduler logs each as a job error with a traceback (thousands at 10,000 watches);
    they are counted here as ``max_in_flight`` instead."""
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)


def run(
    runs: tuple[tuple[int, int], ...] = RUNS, window: float = WINDOW
) -> list[dict[str, object]]:
    _quiet_cancelled_jobs()
    results = []
    with serve() as sim:
        for count, every in runs:
            with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
                path = Path(folder) / "watches.yaml"
                path.write_text(config(sim, Path(folder) / "s.db", count, every), "utf-8")
                seed_baselines(path, sim)
                result = asyncio.run(_drive(path, window))
                results.append(
                    {
                        "watches": count,
                        "every_seconds": every,
                        "demand_polls_per_second": round(count / every, 1),
                        "window_seconds": window,
                        **result,
                    }
                )
    return results
