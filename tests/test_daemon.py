"""The daemon's pure scheduling maths, its job options, metrics wiring and hot reload as a
diff, with the real AsyncIOScheduler (started paused) in the test's loop."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import JobSubmissionEvent
from apscheduler.triggers.interval import IntervalTrigger

from watcher import triggers
from watcher.config import Settings, load_settings
from watcher.daemon import Daemon
from watcher.health import HealthError
from watcher.models import EventKind
from watcher.outbox import FlushReport
from watcher.poller import PollOutcome
from watcher.reload import REJECTED_VERSION
from watcher.runner import Pause
from watcher.schedule import freshness_ttl, in_poll_retries
from watcher.triggers import build_trigger, first_run_time

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SHOP = "3f8aa146-6f96-46e8-9781-64db5166f9a8"


def yaml(tmp_path: Path, watches: str, extra: str = "") -> str:
    return (
        "version: 1\n"
        'api: {base_url: "http://127.0.0.1:9", api_key: "tt_sim_unit"}\n'
        f'state: {{database: "sqlite:///{tmp_path / "state.db"}"}}\n'
        'notifiers: {hook: {urls: ["json://127.0.0.1:9/"]}, ops: {urls: ["json://127.0.0.1:9/o"]}}\n'
        "ops_notify: [ops]\n"
        "defaults: {notify: [hook], every: 1h}\n"
        f"{extra}"
        f"watches:\n{watches}"
    )


def settings_of(tmp_path: Path, watches: str, extra: str = "") -> Settings:
    path = tmp_path / "watches.yaml"
    path.write_text(yaml(tmp_path, watches, extra), "utf-8")
    return load_settings(path, {})


def one_watch(tmp_path: Path, spec: str) -> Settings:
    return settings_of(tmp_path, f"  - {{name: w, shop: {SHOP}, {spec}}}\n")


# --- pure scheduling maths ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "last_poll", "rng", "expected"),
    [
        ("every: 1h", None, 0.5, NOW + timedelta(seconds=15)),  # never polled: soon, spread
        ("every: 10s", None, 0.5, NOW + timedelta(seconds=5)),  # spread within the interval
        ("every: 1h", NOW - timedelta(minutes=20), 0.5, NOW + timedelta(minutes=40)),  # its turn
        ("every: 1h", NOW - timedelta(hours=3), 0.0, NOW),  # overdue: now
        ("every: 1h", NOW - timedelta(minutes=59, seconds=50), 1.0, NOW + timedelta(seconds=30)),
        ("cron: '0 13 * * *'", NOW - timedelta(hours=2), 0.0, NOW + timedelta(hours=1)),
        ("cron: '0 11 * * *'", NOW - timedelta(hours=2), 0.0, NOW),  # fired since: overdue
    ],
)
def test_first_run_time(
    tmp_path: Path, spec: str, last_poll: datetime | None, rng: float, expected: datetime
) -> None:
    """A (re)started watch polls soon when overdue, else at its turn, never in a burst."""
    settings = one_watch(tmp_path, spec)
    watch = settings.watches[0]
    trigger = triggers.trigger(watch.schedule, ZoneInfo("UTC"))
    assert first_run_time(watch, trigger, last_poll, NOW, rng=lambda: rng) == expected


@pytest.mark.parametrize(
    ("spec", "jitter"),
    [("every: 1s", None), ("every: 9s", None), ("every: 10m", 60), ("every: 6h", 120)],
)
def test_interval_trigger_jitter(tmp_path: Path, spec: str, jitter: int | None) -> None:
    """Jitter is 10 % of the interval, at most two minutes, none below a second."""
    settings = one_watch(tmp_path, spec)
    trigger = build_trigger(settings.watches[0], settings)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.jitter == jitter


def test_cron_trigger_jitter(tmp_path: Path) -> None:
    """Cron watches fire within a minute of their time."""
    settings = one_watch(tmp_path, "cron: '*/5 * * * *'")
    assert build_trigger(settings.watches[0], settings).jitter == 60


@pytest.mark.parametrize(
    ("every", "retries", "ttl"),
    [("1s", 0, 0.5), ("2s", 1, 1.0), ("10s", 2, 5.0), ("1m", 4, 30.0), ("1h", 5, 30.0)],
)
def test_retries_and_freshness_follow_the_shortest_interval(
    tmp_path: Path, every: str, retries: int, ttl: float
) -> None:
    """In-poll retries fit in half the shortest interval; freshness is shared as long."""
    settings = settings_of(
        tmp_path,
        f"  - {{name: fast, shop: {SHOP}, every: {every}}}\n  - {{name: slow, shop: {SHOP}}}\n",
    )
    assert in_poll_retries(settings) == retries
    assert freshness_ttl(settings) == timedelta(seconds=ttl)


# --- a daemon built but not serving ------------------------------------------------------


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    """A Daemon over a real store and the real scheduler, started paused (no job runs)."""
    path = tmp_path / "watches.yaml"
    path.write_text(
        yaml(tmp_path, f"  - {{name: a, shop: {SHOP}}}\n  - {{name: b, hashtag: gummies}}\n"),
        "utf-8",
    )
    built = Daemon(path, {}, clock=Clock())
    settings = load_settings(path, {})
    built.build(settings)
    built.scheduler.start(paused=True)
    await built._schedule_all()
    yield built
    built.scheduler.shutdown(wait=False)
    await built.runner.client.aclose()
    built.store.close()


class Clock:
    """A clock that moves a second each time it is read."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def save(daemon: Daemon, text: str) -> None:
    daemon.config_path.write_text(text, "utf-8")


def jobs(daemon: Daemon) -> dict[str, object]:
    return {job.id: job for job in daemon.scheduler.get_jobs()}


def ops_events(daemon: Daemon, kind: EventKind) -> int:
    return sum(1 for v in daemon.store.outbox.events(limit=1000) if v.event.kind == kind)


async def test_jobs_coalesce_and_forgive_misfires(daemon: Daemon) -> None:
    """One job per watch: coalesced, one instance, a misfire grace of its interval."""
    job = daemon.scheduler.get_job("a")
    assert job is not None
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600)
    # The first poll comes within the 30 s start spread; the test clock ticks a second
    # per read, so allow for the reads made while scheduling.
    assert NOW <= job.next_run_time <= NOW + timedelta(seconds=30 + 10)


async def test_reload_applies_only_the_difference(daemon: Daemon, tmp_path: Path) -> None:
    """Removed watches lose their job, added ones get one, untouched ones keep theirs."""
    before = jobs(daemon)
    save(
        daemon,
        yaml(tmp_path, f"  - {{name: a, shop: {SHOP}}}\n  - {{name: c, hashtag: creatine}}\n"),
    )
    assert await daemon.reload()
    after = jobs(daemon)
    assert set(after) == {"a", "c"}
    assert after["a"] is before["a"], "the untouched watch keeps its job and next run"
    assert daemon.settings is not None
    assert [w.name for w in daemon.settings.watches] == ["a", "c"]
    assert daemon.runner.settings is daemon.settings
    assert daemon.outbox.settings is daemon.settings
    [removed] = [w for w in daemon.store.memory.watches() if w.name == "b"] or [None]
    assert removed is None or removed.removed_at is not None


async def test_reload_reschedules_a_changed_watch(daemon: Daemon, tmp_path: Path) -> None:
    """A new interval replaces the watch's trigger; a disabled watch loses its job."""
    save(
        daemon,
        yaml(
            tmp_path,
            f"  - {{name: a, shop: {SHOP}, every: 5m}}\n"
            "  - {name: b, hashtag: gummies, enabled: false}\n",
        ),
    )
    assert await daemon.reload()
    job = daemon.scheduler.get_job("a")
    assert job is not None
    assert job.trigger.interval == timedelta(minutes=5)
    assert daemon.scheduler.get_job("b") is None
    assert all(w.removed_at is None for w in daemon.store.memory.watches()), (
        "disabled is not removed"
    )


async def test_a_busy_health_port_fails_the_start(tmp_path: Path) -> None:
    """A health port already taken is a clear error before anything is opened."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        path = tmp_path / "watches.yaml"
        path.write_text(yaml(tmp_path, f"  - {{name: a, shop: {SHOP}}}\n"), "utf-8")
        daemon = Daemon(path, {"WATCHER_HEALTH_PORT": str(port)})
        with pytest.raises(HealthError, match="cannot serve health"):
            await daemon.run()
    assert not (tmp_path / "state.db").exists()


async def test_invalid_config_is_rejected_once_per_version(daemon: Daemon, tmp_path: Path) -> None:
    """A bad file keeps the jobs and records one config_rejected; saved again, none; a
    different bad file, one more; a good file clears the memory of the bad one."""
    good = yaml(tmp_path, f"  - {{name: a, shop: {SHOP}}}\n  - {{name: b, hashtag: gummies}}\n")
    before = set(jobs(daemon))
    save(daemon, good + "  - {name: x, shop: [unclosed\n")
    assert not await daemon.reload()
    assert not await daemon.reload()  # saved again unchanged
    assert set(jobs(daemon)) == before
    assert ops_events(daemon, EventKind.CONFIG_REJECTED) == 1
    save(daemon, good.replace("version: 1\n", "version: 1\nsurprise: 1\n"))
    assert not await daemon.reload()
    assert ops_events(daemon, EventKind.CONFIG_REJECTED) == 2
    [latest] = [
        v.event
        for v in daemon.store.outbox.events(limit=10)
        if v.event.kind == EventKind.CONFIG_REJECTED and "surprise" in str(v.event.figures)
    ]
    assert "unknown key 'surprise'" in str(latest.figures["error"])
    save(daemon, good)
    assert await daemon.reload()
    assert not daemon.store.meta.get(REJECTED_VERSION)
    save(daemon, good.replace("version: 1\n", "version: 1\nsurprise: 1\n"))
    assert not await daemon.reload()
    assert ops_events(daemon, EventKind.CONFIG_REJECTED) == 3, "a new episode after a fix"


async def test_a_config_change_lifts_an_auth_pause(daemon: Daemon, tmp_path: Path) -> None:
    """Polling paused on a rejected key resumes when the config is saved (a new key)."""
    daemon.runner.pause = Pause("auth", NOW)
    client = daemon.runner.client
    save(
        daemon,
        yaml(
            tmp_path, f"  - {{name: a, shop: {SHOP}}}\n  - {{name: b, hashtag: gummies}}\n"
        ).replace("tt_sim_unit", "tt_sim_fixed"),
    )
    assert await daemon.reload()
    assert daemon.runner.pause is None
    assert daemon.runner.client is not client
    assert daemon.runner.poller.client is daemon.runner.client


async def test_metrics_follow_polls_lag_and_deliveries(daemon: Daemon) -> None:
    """Polls, schedule lag, deliveries and outbox depth reach the Prometheus registry."""
    metrics = daemon.metrics
    seen: list[PollOutcome] = []
    daemon.on_poll.append(seen.append)
    daemon.runner.pause = Pause("credits", NOW)
    await daemon._poll_job("a")
    assert [o.outcome for o in seen] == ["paused"]
    planned = daemon.clock() - timedelta(seconds=1)  # read once more by the listener
    daemon._on_submitted(JobSubmissionEvent(4096, "a", "default", [planned]))
    assert daemon.lag_seconds == [2.0]
    daemon.outbox.totals = FlushReport(sent=3, failed=1)
    await daemon._report_metrics()
    daemon.outbox.totals = FlushReport(sent=5, failed=1, dead=1)
    await daemon._report_metrics()
    text = metrics.render().decode()
    assert 'watcher_polls_total{outcome="paused"} 1.0' in text
    assert "watcher_schedule_lag_seconds_sum 2.0" in text
    assert 'watcher_deliveries_total{outcome="sent"} 5.0' in text
    assert 'watcher_deliveries_total{outcome="dead"} 1.0' in text
    assert "watcher_outbox_depth 0.0" in text
    assert "watcher_watches 2.0" in text


async def test_every_poll_logs_one_line_with_its_figures(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    """Even a paused poll logs its line, with watch and outcome as fields, at DEBUG (a poll
    that read and found nothing is no news at INFO)."""
    daemon.runner.pause = Pause("credits", NOW)
    with caplog.at_level(logging.DEBUG, logger="watcher.run"):
        await daemon._poll_job("b")
    [record] = [r for r in caplog.records if r.name == "watcher.run"]
    assert record.levelno == logging.DEBUG
    assert (record.__dict__["watch"], record.__dict__["outcome"]) == ("b", "paused")
    for field in ("items", "events", "credits", "duration_ms"):
        assert hasattr(record, field)


async def test_a_rebalance_takes_back_released_watches_and_reports_them(daemon: Daemon) -> None:
    """Watches whose leases were given up are taken again at the next step, their jobs
    rescheduled from their last poll, and /metrics and /healthz say what is held."""
    await daemon.replica.leave()
    assert not daemon.replica.holds("a")
    await daemon._rebalance()
    assert daemon.replica.holds("a")
    assert daemon.replica.delivers()
    job = daemon.scheduler.get_job("a")
    assert job is not None
    assert job.next_run_time is not None
    text = daemon.metrics.render().decode()
    assert 'watcher_watch_held{watch="a"} 1.0' in text
    assert "watcher_outbox_held 1.0" in text
    assert daemon.health.replica == {
        "id": daemon.replica.id,
        "watches_held": 2,
        "delivers": True,
        "replicas": 1,
    }
