"""`watcher run` as a subprocess with a silence added and expired by `watcher silence`
while it runs: the silenced alert is recorded and never sent, the silence's end sends one
summary, and a restart in between sends nothing twice."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.receivers import HttpReceiver, wait_until
from tests.test_daemon_e2e import (
    KEYS,
    SPEED,
    WAIT,
    WATCHER,
    Daemon,
    assert_clean_stop,
    daemons,  # noqa: F401  # the fixture
    launch,
    messages,
    says,
    targets,
    tiktok_id_of,
    yaml_config,
)
from watcher.simulator.params import WorldParams
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import Store


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    """A world where only new items appear on their own: at a simulated day every few
    seconds, the default world stops, resumes and pins the staged ad within the minutes a
    quiet window lasts, and each such change is one more message carrying its id (CI saw
    the digest notifier get the new ad, then its resume)."""
    calm = WorldParams(
        stop_rate=0.0, resume_rate=0.0, pin_rate=0.0, unpin_rate=0.0, remove_rate=0.0
    )
    with running_simulator(
        seed=7, speed=SPEED, api_keys=KEYS, rate_limit=100_000, credits=1_000_000, params=calm
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


def watcher(cfg: Path, *args: str) -> str:
    done = subprocess.run(
        [*WATCHER, *args, "-c", str(cfg)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def states(db: Path, tiktok_id: str) -> set[str]:
    store = Store(f"sqlite:///{db}")
    try:
        return {
            d.state
            for v in store.outbox.events(limit=10_000)
            if v.event.item is not None and v.event.item.tiktok_id == tiktok_id
            for d in v.deliveries
        }
    finally:
        store.close()


def test_a_silence_added_while_the_daemon_runs_mutes_and_its_end_says_so_once(
    sim: SimHandle,
    rx: HttpReceiver,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
) -> None:
    """A CLI silence reaches the running daemon without a reload; its alert is `silenced`,
    never sent; expiring it (across a restart) brings exactly one summary."""
    t = targets(sim)
    db = tmp_path / "state.db"
    cfg = tmp_path / "watches.yaml"
    cfg.write_text(yaml_config(sim, db, {"shop0": t["shop0"]}, hook=f"{rx.url}s1/hook"), "utf-8")
    daemon = launch(daemons, cfg)
    daemon.wait_poll("shop0", "baseline")
    silence_id = watcher(cfg, "silence", "add", "--for", "1d", "--watch", "shop0").strip()

    new_ad = sim.change("new_item", type="ad", shopId=t["shop0"].value)
    tiktok_id = tiktok_id_of(sim, new_ad)
    wait_until(lambda: states(db, tiktok_id) == {"silenced"}, WAIT)
    assert not any(tiktok_id in m["message"] for m in messages(rx, "/s1/hook"))
    assert_clean_stop(daemon)

    watcher(cfg, "silence", "expire", silence_id)
    again = launch(daemons, cfg)

    def summaries() -> list[dict[str, str]]:
        return [m for m in messages(rx, "/s1/hook") if f"Silence {silence_id} ended" in m["title"]]

    wait_until(lambda: len(summaries()) == 1, WAIT)
    assert "shop0: " in summaries()[0]["message"]
    assert "new ad" in summaries()[0]["message"]
    again.terminate()  # its log follows the first daemon's in the same file
    assert len(again.find(says("watcher stopped after"))) == 2
    assert len(summaries()) == 1
    assert not any(tiktok_id in m["message"] for m in messages(rx, "/s1/hook"))


@pytest.mark.timeout(420)  # the quiet window is whole minutes of the real clock
def test_quiet_hours_and_a_digest_schedule_through_the_daemon(
    sim: SimHandle,
    rx: HttpReceiver,
    tmp_path: Path,
    daemons: list[Daemon],  # noqa: F811
) -> None:
    """Through `watcher run` on the real clock: a notifier in quiet hours holds the new ad
    and gets it once, as a digest, when the window ends; a notifier with a digest every
    minute gets no per-poll message, then the ad once in its digest."""
    t = targets(sim)
    db = tmp_path / "state.db"
    cfg = tmp_path / "watches.yaml"
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0)
    # The window ends at the next minute boundary that leaves 40 s to record the ad inside it.
    end = start + timedelta(minutes=1 if (start + timedelta(minutes=1) - now).seconds >= 40 else 2)
    quiet = f'{{from: "{start:%H:%M}", to: "{end:%H:%M}"}}'
    hook, night = f"{rx.url}q1/digest", f"{rx.url}q1/night"
    text = yaml_config(sim, db, {"shop0": t["shop0"]}, hook=hook)
    text = text.replace(
        f'hook: {{urls: ["{hook}"]}}',
        f'hook: {{urls: ["{hook}"], digest: {{cron: "* * * * *"}}}}, '
        f'night: {{urls: ["{night}"], quiet_hours: {quiet}}}',
    ).replace("notify: [hook]", "notify: [hook, night]")
    cfg.write_text(text, "utf-8")
    daemon = launch(daemons, cfg)
    daemon.wait_poll("shop0", "baseline")

    new_ad = sim.change("new_item", type="ad", shopId=t["shop0"].value)
    tiktok_id = tiktok_id_of(sim, new_ad)
    wait_until(lambda: "held" in states(db, tiktok_id), WAIT)
    assert datetime.now(UTC) < end, "the ad was recorded inside the quiet window"
    assert not any(tiktok_id in m["message"] for m in messages(rx, "/q1/night"))

    def carrying(path: str) -> list[dict[str, str]]:
        return [m for m in messages(rx, path) if tiktok_id in m["message"]]

    wait_until(lambda: len(carrying("/q1/digest")) == 1, 2 * WAIT + 30)
    wait_until(lambda: len(carrying("/q1/night")) == 1, 3 * WAIT)
    assert datetime.now(UTC) >= end, "the quiet notifier got it only after its window"
    wait_until(lambda: states(db, tiktok_id) == {"sent"}, WAIT)
    assert_clean_stop(daemon)
    assert len(carrying("/q1/digest")) == 1
    assert len(carrying("/q1/night")) == 1
