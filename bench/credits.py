"""Benchmark 1: credits and recall of watcher's polling plan vs the lower bound and naive.

A 30-day run of the reference workload (``bench.workload``) on the simulator's default
evolution, polled every 6 simulated hours (so 3 of 4 polls fall between refreshes). watcher
runs in-process (one ``Runner`` over HTTP, as the daemon has); the naive poller runs
against the same simulator with its own API key, so each side's credits are its own.

The naive poller uses no [chosen] feature and the world evolves identically in both API
modes (same seed; documented-only only moves ``updatedAt`` more), so it runs once, in
the first mode, and its figures hold for both.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.naive import NaivePoller
from bench.scoring import Key, Truth, score
from bench.sim import CREDITS, NAIVE_KEY, WATCHER_KEY, serve, twin
from bench.workload import Oracle, build, config_yaml
from watcher import app
from watcher.config import load_settings
from watcher.models import ITEM_KINDS
from watcher.runner import Runner
from watcher.simulator.clock import parse_iso
from watcher.simulator.testing import SimHandle
from watcher.store import Store

DAYS = 30
NAIVE_DAYS = 5
DOCUMENTED_DAYS = 4
"""The naive poller and the documented-only mode make the simulator serve ~60x and ~30x
more rows than watcher with [chosen] on; they run fewer days so the whole suite fits in
10 minutes. Each is compared with the lower bound of the same days."""
POLLS_PER_DAY = 4
STEP_SECONDS = 86_400 // POLLS_PER_DAY


def _spent(sim: SimHandle, key: str) -> int:
    """Credits a key has spent, from the free ``/v1/usage``."""
    response = httpx.get(
        f"{sim.base_url}/v1/usage", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    response.raise_for_status()
    return CREDITS - int(response.json()["credits"]["totalRemaining"])


def _feed_changes(entries: list[dict[str, object]]) -> list[tuple[str, str]]:
    return sorted((str(c["kind"]), str(c["itemId"])) for c in entries if c["kind"] != "rank")


async def _run(  # noqa: PLR0915  # one scripted run, read top to bottom
    documented_only: bool, folder: Path, days: int, *, naive_days: int
) -> dict[str, object]:
    world = twin(documented_only=documented_only)
    oracle = Oracle(world)
    with serve(documented_only=documented_only) as sim:
        specs = build(sim.world())
        path = folder / "watches.yaml"
        db = folder / "state.db"
        path.write_text(config_yaml(sim.base_url, WATCHER_KEY, db, specs), "utf-8")
        settings = load_settings(path, {})
        store = Store(settings.state.database)
        naive = NaivePoller(sim.base_url, NAIVE_KEY, specs)
        naive_active = naive_days > 0
        naive_truth: tuple[Counter[Key], int, int] | None = None
        truth = Truth(specs)
        truth.observe_baseline(oracle)
        outcomes: Counter[str] = Counter()
        watcher_seconds = 0.0
        started = time.perf_counter()
        async with app.make_client(settings) as client:
            runner = Runner(settings, store, client)

            async def watcher_round() -> int:
                nonlocal watcher_seconds
                runner.forget_freshness()
                begin = time.perf_counter()
                done = await asyncio.gather(*(runner.poll(w) for w in settings.watches))
                watcher_seconds += time.perf_counter() - begin
                outcomes.update(o.outcome for o in done)
                return sum(o.credits for o in done)

            async def naive_round() -> int:
                return await naive.poll_all() if naive_active else 0

            baseline_watcher, baseline_naive = await asyncio.gather(watcher_round(), naive_round())
            steady_watcher = steady_naive = idle_watcher = 0
            for step in range(days * POLLS_PER_DAY):
                if naive_active and step == naive_days * POLLS_PER_DAY:
                    naive_truth = (Counter(truth.expected), truth.lower_bound, truth.refreshes)
                    naive_active = False
                before = world.last_refresh
                advanced = sim.advance(STEP_SECONDS)
                now = parse_iso(str(advanced["now"]))
                assert now is not None
                refreshed = world.advance_to(now) > 0
                if refreshed:
                    changes = world.truth(since=before)
                    served = sim.truth(since=before.isoformat())
                    if _feed_changes(changes) != _feed_changes(served):
                        raise RuntimeError("the twin world diverged from the served one")
                    truth.observe_refresh(oracle, changes)
                # Both sides poll at once: the simulator works while the other side parses.
                spent, naive_spent = await asyncio.gather(watcher_round(), naive_round())
                steady_naive += naive_spent
                if refreshed:
                    steady_watcher += spent
                else:
                    idle_watcher += spent
        elapsed = time.perf_counter() - started
        if naive_active:
            naive_truth = (Counter(truth.expected), truth.lower_bound, truth.refreshes)
        got: Counter[Key] = Counter(
            (v.event.watch, v.event.kind.value, v.event.item.id)
            for v in store.outbox.events(limit=10**7)
            if v.event.kind in ITEM_KINDS and v.event.item is not None
        )
        store.close()
        watcher_total = _spent(sim, WATCHER_KEY)
        naive_total = _spent(sim, NAIVE_KEY)
    bound = truth.lower_bound
    steady = steady_watcher + idle_watcher
    result: dict[str, object] = {
        "mode": "documented-only" if documented_only else "chosen",
        "days": days,
        "polls_per_day": POLLS_PER_DAY,
        "watches": len(specs),
        "watches_by_kind": dict(Counter(s.kind for s in specs)),
        "rank_watches": sum(s.rank for s in specs),
        "refreshes": truth.refreshes,
        "truth_changes": truth.changes,
        "lower_bound": bound,
        "watcher": {
            "credits": steady,
            "baseline_credits": baseline_watcher,
            "idle_poll_credits": idle_watcher,
            "credits_by_usage": watcher_total,
            "ratio_to_bound": round(steady / bound, 3) if bound else None,
            "outcomes": dict(outcomes),
            "seconds_polling": round(watcher_seconds, 1),
            **score(truth.expected, got).as_json(),
        },
        "seconds": round(elapsed, 1),
    }
    if naive_truth is not None:
        expected, naive_bound, naive_refreshes = naive_truth
        result["naive"] = {
            "days": naive_days,
            "refreshes": naive_refreshes,
            "lower_bound": naive_bound,
            "credits": steady_naive,
            "baseline_credits": baseline_naive,
            "credits_by_usage": naive_total,
            "requests": naive.requests,
            "ratio_to_bound": round(steady_naive / naive_bound, 3) if naive_bound else None,
            **score(expected, naive.events).as_json(),
        }
    return result


def _main() -> None:
    """``python -m bench.credits MODE OUT``: one mode's result as JSON (run in parallel)."""
    mode, out = sys.argv[1], Path(sys.argv[2])
    documented_only = mode == "documented-only"
    days = DOCUMENTED_DAYS if documented_only else DAYS
    naive_days = 0 if documented_only else NAIVE_DAYS
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
        result = asyncio.run(_run(documented_only, Path(folder), days, naive_days=naive_days))
    out.write_text(json.dumps(result), "utf-8")


if __name__ == "__main__":
    _main()
