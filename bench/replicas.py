"""Benchmark: 10,000 watches on 1, 2 and 3 `watcher run` replicas sharing one PostgreSQL.

``python -m bench replicas`` (not part of ``make bench``: it takes several minutes).

Each replica is its own process (``python -m bench.replicas child``: the real
:class:`~watcher.daemon.Daemon`, with a hook recording each poll and a listener recording
schedule lag), on a throwaway PostgreSQL cluster (``tests.pgserver``) and the simulator.
As in ``bench.scale``, every watch starts with a stored baseline at the current refresh
and the schedule is compressed (every 60 s), so a poll is the refresh gate plus the
daemon's bookkeeping: what replicas spread.

Measured per run, once the leases have spread (every watch held, each replica at its
fair share: ``ceil(watches / replicas)``, the last one the rest) and one interval more has
passed (the watches a replica took start in a burst), over a window one interval long:
polls/s (all replicas together) against the runs due in the window (planned by the
jobs' schedules, whatever their phase: the ratio says whether the replicas kept up) and
the nominal demand (watches / interval; with the trigger's jitter, watches / 63 s), and
the schedule lag p50/p99 (the scheduler's start minus planned start, held watches). With
2 and 3 replicas, one is then SIGKILLed: ``takeover`` is the time until every watch it
held is leased to a survivor, ``failover`` the time until each of them is polled again
(p50 and max over its watches); the window's figures are the survivors', scaled to all
the watches (the SIGKILLed replica writes nothing).

Also reported, to tell a starved replica: each replica's lease steps (renew and
rebalance, due every ``lease / 3``) in the window, their duration p50/max and the
longest gap between two; the lines in which a replica logged losing leases (with their
time, beside the window's); and the load average at the start and after the window (the
machine may be shared). The parent reads the lease table once a second (a count per
holder), out of the replicas' way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from bench.scale import config as scale_config
from bench.scale import seed_baselines
from bench.sim import ROOT, serve
from bench.stats import percentile, percentiles
from watcher.simulator.testing import SimHandle
from watcher.store import Store
from watcher.store.leases import WATCH, leases
from watcher.store.tables import LeaseRow

WATCHES = 10_000
EVERY = 60
LEASE = 10
JITTER = EVERY * 0.1
"""An interval trigger's jitter (``watcher.triggers``): each run comes 0 to 6 s after the
last one plus the interval, so a watch runs every 63 s on average."""
WINDOW = float(EVERY)
SETTLE = float(EVERY)
REPLICAS = (1, 2, 3)
SPREAD_DEADLINE = 600.0


def _config(sim: SimHandle, url: str, folder: Path) -> Path:
    text = scale_config(sim, folder / "unused.db", WATCHES, EVERY)
    text = text.replace(
        f'state: {{database: "sqlite:///{folder / "unused.db"}"}}',
        f'state: {{database: "{url}", lease: {LEASE}s}}',
    )
    path = folder / "watches.yaml"
    path.write_text(text, "utf-8")
    return path


def _held(store: Store) -> Counter[str]:
    """Live watch leases per replica id (one grouped count, not 10,000 rows)."""
    live = col(LeaseRow.expires_at) > func.clock_timestamp()
    query = (
        select(col(LeaseRow.holder), func.count())
        .where(col(LeaseRow.name).startswith(WATCH), live)
        .group_by(col(LeaseRow.holder))
    )
    with store.db.read() as s:
        return Counter({str(holder): int(n) for holder, n in s.execute(query).all()})


def _holding(store: Store, replica: str) -> set[str]:
    return {
        v.name.removeprefix(WATCH) for v in leases(store, WATCH) if v.live and v.holder == replica
    }


def _child_id(pid: int) -> str:
    return f"{os.uname().nodename}-{pid}"


def _run(sim: SimHandle, url: str, folder: Path, count: int) -> dict[str, object]:
    children: list[tuple[subprocess.Popen[bytes], Path]] = []
    store = Store(url, migrate=False)
    try:
        return _measure(sim, store, folder, count, children)
    finally:
        store.close()
        for proc, _ in children:  # a failed run leaves no replica behind
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


def _measure(
    sim: SimHandle,
    store: Store,
    folder: Path,
    count: int,
    children: list[tuple[subprocess.Popen[bytes], Path]],
) -> dict[str, object]:
    path = _config(sim, store.url, folder)
    seed_baselines(path, sim)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRENDTRACK_API_KEY": ""}
    for n in range(count):
        out = folder / f"replica{n}.json"
        log = (folder / f"replica{n}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.replicas", "child", str(path), str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        children.append((proc, out))
    ids = [_child_id(p.pid) for p, _ in children]
    result: dict[str, object] = {"replicas": count, "load_at_start": _load()}
    result["spread_seconds"] = _await_spread(store, folder, ids)
    time.sleep(SETTLE)
    window_start = time.time()
    time.sleep(WINDOW)
    window_end = time.time()
    result["load_after_window"] = _load()
    victim_watches: set[str] = set()
    killed_at = 0.0
    if count > 1:
        victim_watches, killed_at, result["takeover_seconds"] = _kill_one(store, children, ids)
    survivors = children[1:] if count > 1 else children
    for proc, _ in survivors:
        proc.send_signal(signal.SIGTERM)
    for proc, _ in survivors:
        proc.wait(120)
    polls: list[tuple[float, str]] = []
    lags: list[tuple[float, float]] = []
    steps: list[list[tuple[float, float]]] = []
    for _, out in survivors:  # the SIGKILLed replica wrote nothing
        data = json.loads(out.read_text("utf-8"))
        polls += [(t, w) for t, w in data["polls"]]
        lags += [(t, lag) for t, lag in data["lags"]]
        steps.append([(t, d) for t, d in data["steps"] if window_start <= t < window_end])
    # The victim wrote nothing: its share of the window is the survivors' rate per watch.
    scale = WATCHES / max(WATCHES - len(victim_watches), 1)
    span = window_end - window_start
    done = sum(1 for t, _ in polls if window_start <= t < window_end)
    due = sum(1 for t, lag in lags if window_start <= t - lag < window_end)
    result.update(
        {
            "watches": WATCHES,
            "every_seconds": EVERY,
            "lease_seconds": LEASE,
            "demand_polls_per_second": round(WATCHES / EVERY, 1),
            "demand_with_jitter": round(WATCHES / (EVERY + JITTER / 2), 1),
            "due_per_second": round(due * scale / span, 1),
            "polls_per_second": round(done * scale / span, 1),
            "lag_seconds": percentiles([lag for t, lag in lags if window_start <= t < window_end]),
            "steps": _steps(steps),
            "window_utc": [_utc(window_start), _utc(window_end)],
            "lost_lease_lines": [
                [
                    line
                    for line in (folder / f"replica{n}.log")
                    .read_text("utf-8", "replace")
                    .split("\n")
                    if "lost the lease" in line
                ]
                for n in range(count)
            ],
        }
    )
    if count > 1:
        first: dict[str, float] = {}
        for t, w in sorted(polls):
            if t >= killed_at and w in victim_watches and w not in first:
                first[w] = t - killed_at
        delays = sorted(first.values())
        result["failover_seconds"] = {
            "p50": round(delays[len(delays) // 2], 1) if delays else None,
            "max": round(delays[-1], 1) if delays else None,
            "polled_again": f"{len(first)}/{len(victim_watches)}",
        }
    return result


def _utc(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S")


def _load() -> list[float]:
    """The machine's load average (1, 5, 15 minutes): others' work shows in it."""
    return [round(x, 2) for x in os.getloadavg()]


def _await_spread(store: Store, folder: Path, ids: list[str]) -> float:
    """Seconds until every watch is held and each replica has its fair share."""
    share = -(-WATCHES // len(ids))
    least = WATCHES - (len(ids) - 1) * share  # 3 replicas: 3,334, 3,334 and 3,332
    started = time.monotonic()
    while True:
        held = _held(store)
        if sum(held[i] for i in ids) == WATCHES and all(held[i] >= least for i in ids):
            return round(time.monotonic() - started, 1)
        if time.monotonic() > started + SPREAD_DEADLINE:
            logs = "".join(
                (folder / f"replica{n}.log").read_text("utf-8", "replace")[-1500:]
                for n in range(len(ids))
            )
            raise SystemExit(f"leases did not spread in {SPREAD_DEADLINE:.0f}s: {held}\n{logs}")
        time.sleep(1.0)  # a benchmark may wait: polling the lease table


def _steps(per_replica: list[list[tuple[float, float]]]) -> dict[str, object]:
    """Lease steps in the window: how many per replica, their duration, the longest gap
    between the starts of two steps of one replica (due every ``lease / 3``)."""
    durations = [d for steps in per_replica for _, d in steps]
    gaps = [b[0] - a[0] for steps in per_replica for a, b in itertools.pairwise(sorted(steps))]
    return {
        "count": [len(steps) for steps in per_replica],
        "due_every_seconds": round(LEASE / 3, 2),
        "duration_p50": round(percentile(durations, 50), 3),
        "duration_max": round(max(durations, default=0.0), 3),
        "gap_max": round(max(gaps, default=0.0), 3),
    }


def _kill_one(
    store: Store, children: list[tuple[subprocess.Popen[bytes], Path]], ids: list[str]
) -> tuple[set[str], float, float]:
    """SIGKILL the first replica; its watches, when, and how long the takeover took."""
    victim, _ = children[0]
    watches = _holding(store, ids[0])
    killed_at = time.time()
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    while True:
        held = _held(store)
        if not held[ids[0]] and sum(held[i] for i in ids[1:]) == WATCHES:
            break
        if time.time() - killed_at > SPREAD_DEADLINE:
            raise SystemExit("the survivors never took the victim's watches over")
        time.sleep(0.2)  # polling the lease table (a grouped count)
    takeover = round(time.time() - killed_at, 1)
    time.sleep(45)  # taken-over watches are polled within the start spread (<= 30 s)
    return watches, killed_at, takeover


def run(replicas: tuple[int, ...] = REPLICAS) -> list[dict[str, object]]:
    from tests.pgserver import PgServer  # noqa: PLC0415 - the test suite's throwaway cluster

    results = []
    server = PgServer()
    try:
        with serve() as sim:
            for count in replicas:
                name = server.create_database()
                try:
                    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
                        url = server.url(name)
                        Store(url).close()
                        result = _run(sim, url, Path(folder), count)
                        print(json.dumps(result), file=sys.stderr, flush=True)
                        results.append(result)
                finally:
                    server.drop_database(name)
    finally:
        server.stop()
    return results


async def _child(config: Path) -> tuple[int, dict[str, object]]:
    """One replica: the real daemon, recording its polls and schedule lag for the parent."""
    from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent  # noqa: PLC0415

    from watcher.daemon import Daemon  # noqa: PLC0415

    daemon = Daemon(config, {})
    polls: list[tuple[float, str]] = []
    lags: list[tuple[float, float]] = []
    steps: list[tuple[float, float]] = []
    daemon.on_poll.append(lambda outcome: polls.append((time.time(), outcome.watch)))

    def on_submitted(event: JobSubmissionEvent) -> None:
        if not daemon.replica.holds(event.job_id):
            return
        now = datetime.now(UTC)
        for planned in event.scheduled_run_times:
            lags.append((time.time(), max((now - planned).total_seconds(), 0.0)))

    async def attach() -> None:
        while not hasattr(daemon, "scheduler"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        daemon.scheduler.add_listener(on_submitted, EVENT_JOB_SUBMITTED)
        replica = daemon.replica
        step = replica.step

        async def timed(wanted: Sequence[str], busy: Collection[str] = ()) -> set[str]:
            began, at = time.monotonic(), time.time()
            try:
                return await step(wanted, busy)
            finally:
                steps.append((at, time.monotonic() - began))

        replica.step = timed  # type: ignore[method-assign]

    watcher = asyncio.create_task(attach())
    code = await daemon.run()
    watcher.cancel()
    return code, {"polls": polls, "lags": lags, "steps": steps}


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "child":
        import logging  # noqa: PLC0415

        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        code, data = asyncio.run(_child(Path(sys.argv[2])))
        Path(sys.argv[3]).write_text(json.dumps(data), "utf-8")
        raise SystemExit(code)
    results = run()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
