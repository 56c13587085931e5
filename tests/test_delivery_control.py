"""Delivery control end to end: a real store (SQLite and PostgreSQL), the outbox with real apprise
``json://`` posts to a local receiver, the CLI for silences, and an injected clock.

Each "restart" opens a new store and outbox on the same file, as a new process would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.receivers import HttpReceiver
from tests.test_outbox import TIKTOK_ID, Clock, item_event, record_poll, text_of
from watcher.cli import cli
from watcher.config import Settings, load_settings
from watcher.models import EventKind, ops_event
from watcher.outbox import Outbox
from watcher.runner import ops_routes
from watcher.store import Store

# 2026-05-01 is a Friday; Paris is UTC+2 then.
EVENING = datetime(2026, 5, 1, 20, 30, tzinfo=UTC)  # 22:30 in Paris: quiet
MORNING = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)  # 08:00 in Paris: the window ends


@pytest.fixture
def rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


@pytest.fixture
def ops_rx() -> Iterator[HttpReceiver]:
    with HttpReceiver.json() as receiver:
        yield receiver


def write(tmp_path: Path, team: str, rx: HttpReceiver, ops_rx: HttpReceiver, database: str) -> Path:
    path = tmp_path / "watches.yaml"
    path.write_text(
        "\n".join(
            [
                "version: 1",
                "api: {api_key: tt_test}",
                f'state: {{database: "{database}"}}',
                "timezone: Europe/Paris",
                "notifiers:",
                f'  team: {{urls: ["{rx.url}"]{team}}}',
                f'  ops: {{urls: ["{ops_rx.url}"]}}',
                "ops_notify: [ops]",
                "watches:",
                "  - {name: acme, handle: acme, notify: [team]}",
                "  - {name: rival, handle: rival, notify: [team]}",
            ]
        )
        + "\n",
        "utf-8",
    )
    return path


class Process:
    """One watcher process: its own store and outbox over the shared database file."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.store = Store(settings.state.database)
        self.outbox = Outbox(settings, self.store, clock=clock)

    async def flush(self) -> None:
        await self.outbox.flush()

    def close(self) -> None:
        self.store.close()


def tiktok_ids(rx: HttpReceiver) -> Counter[str]:
    return Counter(i for r in rx.requests for i in set(TIKTOK_ID.findall(text_of(r))))


def delivery_states(settings: Settings) -> Counter[str]:
    store = Store(settings.state.database)
    try:
        return Counter(d.state for v in store.outbox.events() for d in v.deliveries)
    finally:
        store.close()


async def test_quiet_hours_hold_alerts_and_release_one_digest_exactly_once(
    tmp_path: Path, rx: HttpReceiver, ops_rx: HttpReceiver, db_url: str
) -> None:
    """Alerts found at night are held (ops events are not), then go as ONE digest grouped by
    watch when the window ends; a restart in the night changes nothing."""
    path = write(tmp_path, ', quiet_hours: {from: "22:00", to: "08:00"}', rx, ops_rx, db_url)
    settings = load_settings(path, {})
    clock = Clock()
    clock.now = EVENING
    first = Process(settings, clock)
    record_poll(first.store, settings, "acme", [item_event("acme", 1), item_event("acme", 2)])
    ops = ops_event(EventKind.WATCH_FAILING, "acme", EVENING, {"failures": 3})
    first.store.outbox.record(ops, ops_routes(settings))
    await first.flush()
    assert rx.requests == []
    assert len(ops_rx.requests) == 1  # ops events ignore quiet hours
    assert delivery_states(settings)["held"] == 2
    first.close()

    clock.now = EVENING + timedelta(hours=3)  # restart in the middle of the night
    second = Process(settings, clock)
    record_poll(second.store, settings, "rival", [item_event("rival", 3)])
    await second.flush()
    assert rx.requests == []
    clock.now = MORNING
    await second.flush()
    await second.flush()
    second.close()
    third = Process(settings, clock)
    await third.flush()
    third.close()

    assert len(rx.requests) == 1
    text = text_of(rx.requests[0])
    assert "Held during quiet hours: 3 alerts" in text
    assert text.index("acme") < text.index("rival")  # grouped by watch
    assert set(tiktok_ids(rx).values()) == {1}
    assert len(tiktok_ids(rx)) == 3
    assert delivery_states(settings)["held"] == 0


async def test_a_digest_schedule_sends_one_digest_per_fire_and_none_when_empty(
    tmp_path: Path, rx: HttpReceiver, ops_rx: HttpReceiver, db_url: str
) -> None:
    """A digest notifier gets nothing per poll, one digest at its time (also after a
    restart past it), and nothing at a time with nothing to say."""
    path = write(tmp_path, ', digest: {cron: "0 9 * * *"}', rx, ops_rx, db_url)
    settings = load_settings(path, {})
    clock = Clock()
    clock.now = datetime(2026, 5, 1, 5, 0, tzinfo=UTC)  # 07:00 in Paris: schedule starts
    first = Process(settings, clock)
    await first.flush()
    record_poll(first.store, settings, "acme", [item_event("acme", 1, EventKind.AD_STOPPED)])
    record_poll(first.store, settings, "rival", [item_event("rival", 2)])
    await first.flush()
    assert rx.requests == []
    first.close()  # down over 09:00

    clock.now = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)  # 10:30 in Paris
    second = Process(settings, clock)
    await second.flush()
    await second.flush()
    assert len(rx.requests) == 1
    assert "Digest: 2 alerts" in text_of(rx.requests[0])
    clock.now += timedelta(days=1)  # the next 09:00 passed with nothing to say
    await second.flush()
    assert len(rx.requests) == 1
    second.close()


def cli_run(path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "-c", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_silence_added_by_the_cli_mutes_then_ends_with_one_summary(
    tmp_path: Path, rx: HttpReceiver, ops_rx: HttpReceiver, db_url: str
) -> None:
    """A silence added while the outbox runs applies at its next pass; its alerts are
    recorded `silenced`, never sent; its end (expire, then a restart) sends ONE summary."""
    path = write(tmp_path, "", rx, ops_rx, db_url)
    settings = load_settings(path, {})
    clock = Clock()
    clock.now = datetime.now(UTC)
    running = Process(settings, clock)
    await running.flush()
    silence_id = cli_run(path, "silence", "add", "--for", "1d", "--watch", "acme").strip()
    assert silence_id.isdigit()
    clock.now = datetime.now(UTC)
    record_poll(running.store, settings, "acme", [item_event("acme", 1), item_event("acme", 2)])
    record_poll(running.store, settings, "rival", [item_event("rival", 3)])
    await running.flush()
    assert len(rx.requests) == 1  # rival's only
    assert "acme" not in text_of(rx.requests[0])
    assert delivery_states(settings)["silenced"] == 2
    assert "held 2" in cli_run(path, "silence", "list")
    events_out = cli_run(path, "events", "--since", "3650d", "--json")
    assert '"state": "silenced"' in events_out

    cli_run(path, "silence", "expire", silence_id)
    running.close()  # restart right after the expiry
    clock.now = datetime.now(UTC)
    again = Process(settings, clock)
    await again.flush()
    await again.flush()
    again.close()
    assert len(rx.requests) == 2
    summary = text_of(rx.requests[1])
    assert f"Silence {silence_id} ended" in summary
    assert "acme: 2 new ad" in summary
    assert not TIKTOK_ID.search(summary)  # counts, not the alerts themselves
    assert cli_run(path, "silence", "list").strip() == "no active silences"


async def test_once_retries_a_backing_off_delivery_now(
    tmp_path: Path, rx: HttpReceiver, ops_rx: HttpReceiver, db_url: str
) -> None:
    """After an outage, a forced flush (``watcher once``) sends what waits in backoff."""
    path = write(tmp_path, "", rx, ops_rx, db_url)
    settings = load_settings(path, {})
    clock = Clock()
    process = Process(settings, clock)
    rx.fail_next(1)
    record_poll(process.store, settings, "acme", [item_event("acme", 1)])
    await process.flush()
    await process.flush()  # backing off: the daemon does not retry yet
    assert len(rx.requests) == 1
    await process.outbox.flush(force=True)
    process.close()
    assert len(rx.requests) == 2
    assert delivery_states(settings)["sent"] == 1


def test_check_reports_every_bad_delivery_key_with_its_line(tmp_path: Path) -> None:
    """Bad quiet hours, days, digest and milestones are errors naming their lines."""
    path = tmp_path / "watches.yaml"
    path.write_text(
        "\n".join(
            [
                "version: 1",
                "api: {api_key: tt_test}",
                "notifiers:",
                "  team:",
                '    urls: ["json://127.0.0.1:9/x"]',
                '    quiet_hours: {from: "25:00", to: "08:00"}',
                "  mail:",
                '    urls: ["json://127.0.0.1:9/y"]',
                '    quiet_hours: {from: "22:00", to: "08:00", days: [mon, someday]}',
                "    digest: {every: 1d, cronn: x}",
                "watches:",
                "  - name: acme",
                "    handle: acme",
                "    milestones: [0]",
            ]
        )
        + "\n",
        "utf-8",
    )
    result = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert result.exit_code == 1
    out = result.output
    assert ":6:" in out
    assert "HH:MM" in out
    assert ":9:" in out
    assert "someday" in out
    assert ":10:" in out
    assert "cronn" in out
    assert ":14:" in out
    assert "milestones" in out
