"""A real installation moved from SQLite to PostgreSQL goes on where it stopped.

`watcher once` runs against the simulator on SQLite until the outbox holds deliveries in
every state: sent (a good URL), pending and backing off, then dead (a URL that always
fails), held (a digest notifier whose digest is not due) and silenced (a silence on one
watch). `watcher db copy` moves it to PostgreSQL; `watcher once` on the copy then polls
without a new baseline, sends the new alert once, resends nothing, retries the pending
rows (they die, as they would have on SQLite) and leaves held and silenced rows as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PASSWORD
from tests.receivers import HttpReceiver
from tests.simworld import ITEM_EVENTS
from tests.test_db_cli import cli_run
from tests.test_db_copy import dump
from watcher import app
from watcher.outbox import Outbox
from watcher.runner import Runner
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import Store

TIKTOK_ID = re.compile(r"\b7\d{18}\b")
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with running_simulator(seed=11, rate_limit=100_000, credits=1_000_000) as handle:
        yield handle


NOTIFIERS = ("team", "flaky", "broken", "later")


def write(path: Path, sim: SimHandle, database: str, receivers: dict[str, HttpReceiver]) -> Path:
    shops = sim.world()["shops"]
    assert isinstance(shops, list)
    url = {name: rx.url for name, rx in receivers.items()}
    lines = [
        "version: 1",
        f'api: {{base_url: "{sim.base_url}", api_key: "{sim.api_key}",'
        " max_requests_per_minute: 6000}",
        f'state: {{database: "{database}"}}',
        "delivery: {max_attempts: 2, backoff_seconds: 3600}",
        "notifiers:",
        *(f'  {name}: {{urls: ["{url[name]}"]}}' for name in ("team", "flaky", "broken")),
        f'  later: {{urls: ["{url["later"]}"], digest: {{cron: "0 0 1 1 *"}}}}',
        f"defaults: {{notify: [{', '.join(NOTIFIERS)}], every: 1h, events: {ITEM_EVENTS}}}",
        "watches:",
        f'  - {{name: shop, shop: "{shops[0]["id"]}"}}',
        f'  - {{name: other, shop: "{shops[1]["id"]}"}}',
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


async def daemon_pass(path: Path) -> None:
    """What a running daemon does at a poll: poll every watch, then one delivery pass,
    which (unlike `watcher once`) leaves a failed URL backing off."""
    settings = app.settings_from(path)
    store = app.open_store(settings)
    try:
        async with app.make_client(settings) as client:
            runner = Runner(settings, store, client)
            for watch in settings.watches:
                await runner.poll(watch)
        await Outbox(settings, store).flush()
    finally:
        store.close()


def states(url: str) -> Counter[tuple[str, str]]:
    """(notifier, state) over every delivery."""
    store = Store(url, migrate=False)
    try:
        return Counter(
            (d.notifier, d.state) for v in store.outbox.events(limit=10_000) for d in v.deliveries
        )
    finally:
        store.close()


def rows_of(url: str, notifier: str) -> dict[str, tuple[str, int]]:
    """(state, attempts) of each event's delivery to ``notifier``, by tiktok id and watch."""
    store = Store(url, migrate=False)
    try:
        return {
            f"{v.event.watch}:{v.event.item.tiktok_id if v.event.item else v.event.key}": (
                d.state,
                d.attempts,
            )
            for v in store.outbox.events(limit=10_000)
            for d in v.deliveries
            if d.notifier == notifier
        }
    finally:
        store.close()


def ids_at(rx: HttpReceiver) -> Counter[str]:
    """How often each tiktok id reached ``rx`` (failed requests included)."""
    return Counter(i for r in rx.requests for i in set(TIKTOK_ID.findall(r.body.decode())))


def new_ad(sim: SimHandle, shop: int) -> str:
    shops = sim.world()["shops"]
    assert isinstance(shops, list)
    return sim.change("new_item", type="ad", shopId=str(shops[shop]["id"])).removeprefix("tiktok_")


@pytest.mark.timeout(300)
def test_a_copy_from_sqlite_to_postgresql_goes_on_where_the_original_stopped(
    sim: SimHandle, tmp_path: Path, pg_url: str
) -> None:
    receivers = {name: HttpReceiver.json() for name in NOTIFIERS}
    with contextlib.ExitStack() as stack:
        for rx in receivers.values():
            stack.enter_context(rx)
        team, flaky, broken, later = (receivers[n] for n in NOTIFIERS)
        broken.fail_next(100_000)
        sqlite_url = f"sqlite:///{tmp_path / 'state.db'}"
        on_sqlite = write(tmp_path / "sqlite.yaml", sim, sqlite_url, receivers)
        on_pg = write(tmp_path / "pg.yaml", sim, pg_url, receivers)

        code, out = cli_run(on_sqlite, "once")
        assert code == 0, out
        assert "shop: baseline" in out
        code, out = cli_run(on_sqlite, "silence", "add", "--for", "7d", "--watch", "other")
        assert code == 0, out
        first = [new_ad(sim, 0), new_ad(sim, 0), new_ad(sim, 1)]
        sim.advance_days(1)
        assert cli_run(on_sqlite, "once")[0] == 0
        second = new_ad(sim, 0)
        sim.advance_days(1)
        assert cli_run(on_sqlite, "once")[0] == 0  # broken: the first poll's row died
        flaky.fail_next(1)
        backing_off = new_ad(sim, 0)
        sim.advance_days(1)
        asyncio.run(daemon_pass(on_sqlite))  # flaky and broken: one failure, backing off
        before = states(sqlite_url)
        assert {state for (_, state), n in before.items() if n} == {
            "sent",
            "pending",
            "dead",
            "held",
            "silenced",
        }, before
        assert rows_of(sqlite_url, "flaky")[f"shop:{backing_off}"] == ("pending", 1)
        sent_before = len(team.requests)

        code, out = cli_run(on_sqlite, "db", "copy", "--to", pg_url)
        assert code == 0, out
        assert PASSWORD not in out
        assert dump(pg_url) == dump(sqlite_url)

        third = new_ad(sim, 0)
        sim.advance_days(1)
        code, out = cli_run(on_pg, "once")
        assert code == 0, out
        assert "baseline" not in out, "the copy kept each watch's memory"

    after = states(pg_url)
    team_rows = rows_of(pg_url, "team")
    flaky_rows = rows_of(pg_url, "flaky")
    shop_ids = [*first[:2], second, backing_off, third]
    # Nothing resent: each alert reached the team once, in one attempt, the copy's included.
    assert all(team_rows[f"shop:{i}"] == ("sent", 1) for i in shop_ids), team_rows
    assert len(team.requests) == sent_before + 1, "one new message: the new poll's alert"
    assert ids_at(team)[first[2]] == 0, "the silenced watch's alert was never sent"
    # Nothing lost: the row backing off on SQLite was sent from the copy (its 2nd attempt).
    assert flaky_rows[f"shop:{backing_off}"] == ("sent", 2)
    assert ids_at(flaky)[backing_off] == 2  # the failed attempt and the one that went through
    assert all(ids_at(flaky)[i] == 1 for i in (*first[:2], second, third))
    assert after[("broken", "sent")] == 0
    assert after[("broken", "dead")] >= before[("broken", "dead")] + before[("broken", "pending")]
    assert after[("later", "held")] == before[("later", "held")] + 1  # its digest is not due
    assert later.requests == []
    # Silenced rows stay silenced; the silence goes on muting the watch's new alerts.
    assert after[("team", "silenced")] >= before[("team", "silenced")]
    assert {state for key, (state, _) in team_rows.items() if key.startswith("other:")} == {
        "silenced"
    }
