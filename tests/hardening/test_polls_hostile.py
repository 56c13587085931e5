"""Issue 15 items 10 and 11 (the deadline): a poll that crashes on hostile API data, or
never ends, is a counted failure of its watch; ``watcher once`` neither tracebacks nor
runs forever."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.hardening.hostile_api import FRESHNESS, Route, freshness, hostile_api
from watcher import app
from watcher.cli import cli
from watcher.models import EventKind
from watcher.store import Store

DEEP = b'{"requestId": "r", "data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


def config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    path = tmp_path / "watches.yaml"
    path.write_text(
        "version: 1\n"
        f'api: {{base_url: "{base_url}", api_key: tt_test_key, timeout_seconds: 60}}\n'
        f'state: {{database: "sqlite:///{tmp_path / "state.db"}"}}\n'
        "notifiers: {ops: {urls: ['json://127.0.0.1:9/o']}}\n"
        "ops_notify: [ops]\n"
        "ops: {failing_after: 2}\n"
        "delivery: {max_attempts: 1}\n"
        f"{extra}"
        "watches:\n  - {name: w, handle: acme, min_views: 1000, notify: []}\n",
        "utf-8",
    )
    return path


@pytest.mark.parametrize(
    "routes",
    [
        {FRESHNESS: Route(DEEP)},
        {FRESHNESS: Route(freshness()), "/v1/tiktok/library": Route(DEEP)},
    ],
    ids=["deep-freshness", "deep-page"],
)
def test_a_crashing_poll_is_a_counted_failure_without_a_traceback(
    tmp_path: Path, routes: dict[str, Route]
) -> None:
    """Twice in a row: exit 1, no traceback, consecutive_failures 2, watch_failing recorded."""
    with hostile_api(routes) as api:
        path = config(tmp_path, api.url)
        for _ in range(2):
            result = CliRunner().invoke(cli, ["-c", str(path), "once"], env={})
            assert result.exit_code == 1
            assert "Traceback" not in result.output
            assert "w: failed" in result.output
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert store.memory.consecutive_failures("w") == 2
        kinds = [v.event.kind for v in store.outbox.events()]
        assert EventKind.WATCH_FAILING in kinds
    finally:
        store.close()


async def test_once_ends_at_its_deadline_and_counts_the_failure(tmp_path: Path) -> None:
    """A server that never answers the feed can't keep `once` running past its deadline."""
    routes = {FRESHNESS: Route(freshness()), "/v1/tiktok/library": Route(b"{}", delay=30)}
    with hostile_api(routes) as api:
        settings = app.settings_from(config(tmp_path, api.url), {})
        store = app.open_store(settings)
        try:
            started = time.monotonic()
            result = await app.poll_once(
                settings, store, settings.watches, dry_run=False, deadline=2.0
            )
            elapsed = time.monotonic() - started
            [outcome] = result.outcomes
            assert outcome.outcome == "failed"
            assert "did not finish within 2s" in str(outcome.error)
            assert elapsed < 15
            assert await asyncio.to_thread(store.memory.consecutive_failures, "w") == 1
        finally:
            store.close()


async def test_any_exception_inside_a_poll_is_counted_as_that_watchs_failure(
    tmp_path: Path,
) -> None:
    """An OverflowError from the poll (a date past year 9999) is a stored, counted failure."""
    with hostile_api({FRESHNESS: Route(freshness())}) as api:
        settings = app.settings_from(config(tmp_path, api.url), {})
        store = app.open_store(settings)
        try:
            async with app.make_client(settings) as client:
                runner = app.Runner(settings, store, client)

                async def overflowing(*_args: object, **_kwargs: object) -> None:
                    raise OverflowError("date value out of range")

                runner.poller.poll = overflowing  # type: ignore[method-assign]
                outcome = await runner.poll(settings.watches[0])
            assert outcome.outcome == "failed"
            assert "OverflowError" in str(outcome.error)
            assert await asyncio.to_thread(store.memory.consecutive_failures, "w") == 1
        finally:
            store.close()
