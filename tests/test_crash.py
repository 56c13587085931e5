"""`watcher once` killed with SIGKILL mid-poll: the rerun neither loses nor repeats an event."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.simworld import Target, config, expected_events, world_lists
from watcher.models import ITEM_KINDS
from watcher.simulator.testing import running_simulator
from watcher.store import Store


def _polls(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM poll").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # the schema is not there yet


def _once(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "-c", str(path), "once"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TRENDTRACK_API_KEY": ""},
    )


def _kill_after_polls(path: Path, db: Path, polls: int, deadline: float = 60.0) -> None:
    """Start `watcher once` and SIGKILL it as soon as ``polls`` more polls are stored."""
    start = _polls(db)
    proc = _once(path)
    end = time.monotonic() + deadline
    while _polls(db) < start + polls and proc.poll() is None:
        assert time.monotonic() < end, "watcher once made no progress"
        time.sleep(0.02)  # polling the database for progress, with a deadline
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_sigkill_mid_poll_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Kill at several points of a run; after reruns, events equal the truth exactly."""
    with running_simulator(seed=11, rate_limit=100_000, credits=1_000_000) as sim:
        world = world_lists(sim)
        targets = [
            *(Target(f"shop{i}", "shop", str(s["id"])) for i, s in enumerate(world.shops[:4])),
            *(Target(f"tag{i}", "hashtag", t) for i, t in enumerate(world.hashtags[:3])),
        ]
        db = tmp_path / "state.db"
        path = tmp_path / "watches.yaml"
        path.write_text(config(sim, db, targets), "utf-8")
        assert _once(path).wait(60) == 0  # baseline
        start = str(sim.world()["now"])
        for kill_after in (0, 2, 5):
            sim.change("new_item", type="ad", shopId=targets[0].value, indexLagHours=30)
            sim.advance_days(1)
            # Every request takes a while, so the kill lands mid-run.
            sim._post("/_sim/faults", {"rate": 1.0, "kinds": ["slow"], "slowSeconds": 0.4})
            _kill_after_polls(path, db, kill_after)
            sim.faults(0.0, [])
            assert _once(path).wait(60) in {0, 1}
            assert _once(path).wait(60) in {0, 1}  # an idle rerun changes nothing
        store = Store(f"sqlite:///{db}")
        got = Counter(
            (v.event.watch, v.event.kind.value, v.event.item.id)
            for v in store.outbox.events(limit=100_000)
            if v.event.kind in ITEM_KINDS and v.event.item is not None
        )
        expected = expected_events(sim.truth(since=start), targets)
        store.close()
        assert got - expected == Counter(), "nothing repeated or invented"
        assert expected - got == Counter(), "nothing lost"
        assert sum(expected.values()) > 5
