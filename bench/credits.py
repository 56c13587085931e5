"""Benchmark 1: credits and recall of watcher's polling plan vs the lower bound and naive.

Each run polls a workload every 6 simulated hours (so 3 of 4 polls fall between
refreshes), watcher in-process (one ``Runner`` over HTTP, as the daemon has), the naive
poller against the same simulator with its own API key, so each side's credits are its
own. The runs (``RUNS``), each in its own process:

- ``chosen``: the reference workload (``bench.workload``) on the default world, 30 days,
  the contract's [chosen] features on; the naive poller over its first 5 days.
- ``documented-only``: the same workload and world, ``--documented-only``, 4 days.
- ``large``: the large-scope workload (``bench.large``: 20 watches of 300 to 1,000 items
  each, ``WorldParams.large``), ``--documented-only``, 3 days.
- ``large-unstable``: the same with ``--unstable-ties`` and ``publishedAt`` to the hour
  (so items share it), 2 days: the strategy must stay exact when a tie order changes
  between reads.

The baseline is every poll before the first refresh, until no watch is cut by
``max_credits_per_poll`` (documented-only reads each scope whole once); its credits are
reported apart from the steady state's, and the steady state's idle polls (no refresh
since the last one) apart again. The naive poller uses no [chosen] feature and the world
evolves identically in both API modes, so its figures hold for both.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import large
from bench.naive import NaivePoller
from bench.scoring import Key, Truth, score
from bench.sim import CREDITS, DEFAULT_WORLD, NAIVE_KEY, WATCHER_KEY, WorldSpec, serve, twin
from bench.workload import Oracle, WatchSpec, build, config_yaml
from watcher import app
from watcher.config import load_settings
from watcher.models import ITEM_KINDS
from watcher.runner import Runner
from watcher.simulator.clock import parse_iso
from watcher.simulator.testing import SimHandle
from watcher.simulator.world import World
from watcher.store import Store

POLLS_PER_DAY = 4
STEP_SECONDS = 86_400 // POLLS_PER_DAY
BASELINE_ROUNDS = 30
"""At most this many polls of every watch before the first refresh (a baseline cut by the
cap goes on at the next one)."""


@dataclass(frozen=True)
class RunSpec:
    """One credit run: API mode, world, workload and length."""

    name: str
    documented_only: bool
    days: int
    naive_days: int = 0
    world: WorldSpec = DEFAULT_WORLD
    unstable_ties: bool = False

    @property
    def large(self) -> bool:
        return self.world.large

    def specs(self, sim: SimHandle, world: World) -> list[WatchSpec]:
        return large.build(world) if self.large else build(sim.world())


LARGE_WORLD = WorldSpec(large=True)
RUNS = {
    run.name: run
    for run in (
        RunSpec("chosen", documented_only=False, days=30, naive_days=5),
        RunSpec("documented-only", documented_only=True, days=4),
        RunSpec("large", documented_only=True, days=3, world=LARGE_WORLD),
        RunSpec(
            "large-unstable",
            documented_only=True,
            days=2,
            world=WorldSpec(large=True, publish_resolution=3600),
            unstable_ties=True,
        ),
    )
}
"""The naive poller and the documented-only mode make the simulator serve ~60x and ~30x
more rows than watcher with [chosen] on, and the large scopes more again; they run fewer
days so the whole suite stays near 10 minutes. Each is compared with the lower bound and
the full reread of the same days."""


def _spent(sim: SimHandle, key: str) -> int:
    """Credits a key has spent, from the free ``/v1/usage``."""
    response = httpx.get(
        f"{sim.base_url}/v1/usage", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    response.raise_for_status()
    return CREDITS - int(response.json()["credits"]["totalRemaining"])


def _feed_changes(entries: list[dict[str, object]]) -> list[tuple[str, str]]:
    return sorted((str(c["kind"]), str(c["itemId"])) for c in entries if c["kind"] != "rank")


async def _run(run: RunSpec, folder: Path) -> dict[str, object]:  # noqa: PLR0915  # one scripted run
    documented_only = run.documented_only
    days, naive_days = run.days, run.naive_days
    world = twin(documented_only=documented_only, world=run.world)
    oracle = Oracle(world)
    with serve(
        documented_only=documented_only, world=run.world, unstable_ties=run.unstable_ties
    ) as sim:
        specs = run.specs(sim, world)
        path = folder / "watches.yaml"
        db = folder / "state.db"
        text = config_yaml(sim.base_url, WATCHER_KEY, db, specs)
        if run.large:
            cap = f"max_credits_per_poll: {large.MAX_CREDITS_PER_POLL}, "
            text = text.replace("defaults: {", "defaults: {" + cap)
        path.write_text(text, "utf-8")
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

            last: Counter[str] = Counter()

            async def watcher_round() -> int:
                nonlocal watcher_seconds
                runner.forget_freshness()
                begin = time.perf_counter()
                done = await asyncio.gather(*(runner.poll(w) for w in settings.watches))
                watcher_seconds += time.perf_counter() - begin
                last.clear()
                last.update(str(o.outcome) for o in done)
                outcomes.update(last)
                return sum(o.credits for o in done)

            async def naive_round() -> int:
                return await naive.poll_all() if naive_active else 0

            baseline_watcher, baseline_naive = await asyncio.gather(watcher_round(), naive_round())
            baseline_rounds = 1
            # A baseline cut by the cap (a documented-only one reads the scope whole) goes
            # on at the next poll, before any refresh: it is all baseline.
            while baseline_rounds < BASELINE_ROUNDS and (last["capped"] or last["baseline"]):
                if baseline_rounds == 1 and not last["capped"]:
                    break  # one round did it all (the [chosen] baseline reads one row)
                baseline_watcher += await watcher_round()
                baseline_rounds += 1
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
    reread = truth.reread
    result: dict[str, object] = {
        "run": run.name,
        "mode": "documented-only" if documented_only else "chosen",
        "world": "large" if run.large else "default",
        "unstable_ties": run.unstable_ties,
        "publish_resolution": run.world.publish_resolution,
        "days": days,
        "polls_per_day": POLLS_PER_DAY,
        "watches": len(specs),
        "watches_by_kind": dict(Counter(s.kind for s in specs)),
        "rank_watches": sum(s.rank for s in specs),
        "refreshes": truth.refreshes,
        "truth_changes": truth.changes,
        "lower_bound": bound,
        "full_reread": reread,
        "scope_rows": {s.name: oracle.served(s) for s in specs},
        "watcher": {
            "credits": steady,
            "baseline_credits": baseline_watcher,
            "baseline_rounds": baseline_rounds,
            "refresh_poll_credits": steady_watcher,
            "idle_poll_credits": idle_watcher,
            "share_of_full_reread": round(steady / reread, 4) if reread else None,
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
    """``python -m bench.credits RUN OUT``: one run's result as JSON (run in parallel)."""
    name, out = sys.argv[1], Path(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
        result = asyncio.run(_run(RUNS[name], Path(folder)))
    out.write_text(json.dumps(result), "utf-8")


if __name__ == "__main__":
    _main()
