"""`watcher once` SIGKILLed at exact points of its polls against `watcher simulate
--documented-only`: after restarts, the events equal the truth log (none lost, none twice).

Real processes, real HTTP on 127.0.0.1, a real SQLite file. The simulator's ``holdAfter``
hook lets N more /v1 requests through and holds the next one unanswered: `watcher once` is
then blocked inside a poll, after exactly N requests of the refresh's reads (counts,
probes, pages), and is killed there. Several kills land in one refresh, at several
depths, some a second time before the reads completed, so a strategy that reads a refresh
over many requests (a bisection) is interrupted in its middle and must resume or redo it
without losing or repeating an event. A poll between refreshes must cost nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.simworld import Target, config, expected_events, world_lists
from watcher.models import ITEM_KINDS
from watcher.simulator.testing import SimHandle, tls_context
from watcher.store import Store

KEY = "tt_sim_frugal"
SETUP_KEY = "tt_sim_setup"
DEADLINE = 60.0
KILLS = ((2, 9), (1,), (16, 4))
"""Per refresh, the request counts after which each successive `watcher once` is killed
(then one runs to the end)."""
SETTLE_RUNS = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _simulate(seed: int) -> Iterator[SimHandle]:
    """`watcher simulate --documented-only` as its own process, on a free loopback port."""
    port = _free_port()
    args = [sys.executable, "-m", "watcher", "simulate", "--documented-only"]
    args += ["--port", str(port), "--seed", str(seed), "--rate-limit", "1000000"]
    args += ["--credits", "100000000", "--api-key", KEY, "--api-key", SETUP_KEY]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=30.0, verify=tls_context()) as http:
            end = time.monotonic() + DEADLINE
            while True:  # polling for readiness, with a deadline
                assert child.poll() is None, "watcher simulate exited"
                assert time.monotonic() < end, "watcher simulate did not answer"
                try:
                    if http.get("/v1/health", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            yield SimHandle(base_url, KEY, http)
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _once(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "-c", str(path), "once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TRENDTRACK_API_KEY": ""},
    )


def _outcomes(out: str) -> dict[str, tuple[str, int]]:
    """watch -> (outcome, credits) from `watcher once`'s lines "name: outcome, N events,
    C credits"."""
    found = {}
    for line in out.splitlines():
        name, sep, rest = line.partition(": ")
        parts = rest.split(", ")
        if sep and len(parts) >= 3 and parts[2].endswith(" credits"):
            found[name] = (parts[0], int(parts[2].split()[0]))
    return found


def _run(path: Path) -> dict[str, tuple[str, int]]:
    proc = _once(path)
    out, _ = proc.communicate(timeout=DEADLINE)
    assert proc.returncode in {0, 1}, out
    return _outcomes(out)


def _settle(path: Path, watches: int) -> None:
    """`watcher once` until no watch is cut by its cap (all read)."""
    runs = []
    for _ in range(SETTLE_RUNS):
        outcomes = _run(path)
        assert len(outcomes) == watches, outcomes
        runs.append(outcomes)
        if all(outcome != "capped" for outcome, _c in outcomes.values()):
            return
    raise AssertionError(f"watcher once never settled: {runs}")


def _kill_after(sim: SimHandle, path: Path, requests: int) -> bool:
    """Run `watcher once`, hold the API after ``requests`` more /v1 requests, SIGKILL it
    while it waits on the next; True if it was killed mid-poll (False: it ended first)."""
    sim.hold_after(requests)
    proc = _once(path)
    end = time.monotonic() + DEADLINE
    try:
        while proc.poll() is None and sim.fault_state()["held"] == 0:
            assert time.monotonic() < end, "watcher once neither ended nor reached the hold"
            time.sleep(0.02)  # polling the simulator for the hold, with a deadline
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=DEADLINE)
    finally:
        sim.hold_after(None)
    return killed


def _setup_get(sim: SimHandle, path: str, **params: str | int) -> list[dict[str, object]]:
    response = httpx.get(
        sim.base_url + path, params=params, headers={"Authorization": f"Bearer {SETUP_KEY}"}
    )
    response.raise_for_status()
    data: list[dict[str, object]] = response.json()["data"]
    return data


def _stage(sim: SimHandle, targets: list[Target], day: int) -> None:
    """Beside the world's own changes: a late-indexed ad and a fresh one, a pin or an
    unpin, a stop or a resume, in the watched scopes."""
    sim.change("new_item", type="ad", shopId=targets[0].value, indexLagHours=30 + 7 * day)
    sim.change("new_item", type="organic", shopId=targets[1].value, indexLagHours=2)
    items = _setup_get(sim, f"/v1/shops/{targets[2].value}/tiktok/library", limit=50)
    pinned = [i for i in items if i["isPinned"]]
    unpinned = [i for i in items if not i["isPinned"]]
    if day % 2 == 0 and unpinned:
        sim.change("pin", itemId=str(unpinned[day % len(unpinned)]["id"]))
    elif pinned:
        sim.change("unpin", itemId=str(pinned[0]["id"]))
    ads = [i for i in items if i["type"] == "ad"]
    active = [a for a in ads if a["status"] == "active"]
    inactive = [a for a in ads if a["status"] == "inactive"]
    if day % 2 == 1 and active:
        sim.change("stop", itemId=str(active[-1]["id"]))
    elif inactive:
        sim.change("resume", itemId=str(inactive[0]["id"]))


@pytest.mark.timeout(600)  # ~15 `watcher once` runs; 3 minutes on a loaded 2-core box
def test_sigkill_at_exact_points_of_documented_only_polls(tmp_path: Path) -> None:
    """Kill `watcher once` after 1 to 16 requests of a refresh's reads, twice in some
    refreshes; after a rerun, every refresh's events equal the truth log exactly, and a
    poll before the next refresh costs nothing."""
    with _simulate(seed=17) as sim:
        world = world_lists(sim)
        targets = [
            *(Target(f"shop{i}", "shop", str(s["id"])) for i, s in enumerate(world.shops[:3])),
            Target("handle0", "handle", str(world.profiles[1]["handle"])),
            Target("tag0", "hashtag", world.hashtags[len(world.hashtags) // 2]),
        ]
        db = tmp_path / "state.db"
        path = tmp_path / "watches.yaml"
        path.write_text(config(sim, db, targets), "utf-8")
        _settle(path, len(targets))  # the baseline, read whole (over several polls if cut)
        start = str(sim.world()["now"])
        mid_poll = 0
        for day, kills in enumerate(KILLS):
            _stage(sim, targets, day)
            sim.advance_days(1)
            for requests in kills:
                mid_poll += _kill_after(sim, path, requests)
            _settle(path, len(targets))
        idle = _run(path)
        assert {outcome for outcome, _c in idle.values()} == {"skipped"}, idle
        assert sum(credits for _o, credits in idle.values()) == 0, "idle polls are free"
        truth = sim.truth(since=start)
        store = Store(f"sqlite:///{db}")
        try:
            got = Counter(
                (v.event.watch, v.event.kind.value, v.event.item.id)
                for v in store.outbox.events(limit=100_000)
                if v.event.kind in ITEM_KINDS and v.event.item is not None
            )
        finally:
            store.close()
    expected = expected_events(truth, targets)
    assert got - expected == Counter(), "nothing repeated or invented"
    assert expected - got == Counter(), "nothing lost"
    assert sum(expected.values()) >= 15
    assert {kind for _w, kind, _i in expected} >= {"new_ad", "new_video", "pinned"}
    assert mid_poll >= len([k for ks in KILLS for k in ks]) - 2, "the kills landed mid-poll"
