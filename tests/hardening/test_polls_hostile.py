"""Issue 15 items 10 and 11 (the deadline): a poll that crashes on hostile API data, or
never ends, is a counted failure of its watch; ``watcher once`` neither tracebacks nor
runs forever."""

from __future__ import annotations

import asyncio
import json
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
            assert result.exception is None or isinstance(result.exception, SystemExit)
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


def _freshness(ready: str, generated_at: str) -> bytes:
    data = {
        "latestReadyDate": ready,
        "latestScheduledDate": ready,
        "dataFreshnessLagDays": 1,
        "generatedAt": generated_at,
    }
    return json.dumps({"requestId": "r", "status": "ok", "data": data}).encode()


def _page_of_one_small_new_ad() -> bytes:
    """A new ad of the watched handle, still under ``min_views``: the watch follows it for
    ``filter_window`` from the API's clock, which is where year 9999 overflows."""
    stamp = "2026-04-24T01:00:00Z"
    item = {
        "id": "tiktok_1",
        "tiktokId": "7078586231734521093",
        "type": "ad",
        "status": "active",
        "isPinned": False,
        "publishedAt": stamp,
        "createdAt": stamp,
        "indexedAt": stamp,
        "updatedAt": stamp,
        "metrics": {"views": 10},
        "profile": {"handle": "acme"},
    }
    page = {"requestId": "r", "data": [item], "pagination": {"page": 1, "limit": 50, "total": 1}}
    return json.dumps(page).encode()


def test_generated_at_in_year_9999_on_a_min_views_watch_is_a_counted_failure(
    tmp_path: Path,
) -> None:
    """The repro of item 10 over HTTP: a baseline, then two refreshes stamped
    9999-12-31T23:00:00Z serving a new ad under ``min_views`` (OverflowError in the
    poll): each ``watcher once`` exits 1 without a traceback, both count, watch_failing."""
    routes = {FRESHNESS: Route(_freshness("2026-04-23", "2026-04-23T06:00:00Z"))}
    with hostile_api(routes) as api:
        path = config(tmp_path, api.url)
        result = CliRunner().invoke(cli, ["-c", str(path), "once"], env={})
        assert result.exit_code == 0, result.output
        assert "w: baseline" in result.output
        api.routes["/v1/tiktok/library"] = Route(
            _page_of_one_small_new_ad(), headers={"X-Credits-Used": "1"}
        )
        for ready in ("2026-04-24", "2026-04-25"):
            api.routes[FRESHNESS] = Route(_freshness(ready, "9999-12-31T23:00:00Z"))
            result = CliRunner().invoke(cli, ["-c", str(path), "once"], env={})
            assert result.exit_code == 1
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert "Traceback" not in result.output
            assert "w: failed" in result.output
            assert "OverflowError" in result.output
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert store.memory.consecutive_failures("w") == 2
        failing = [
            v.event for v in store.outbox.events() if v.event.kind == EventKind.WATCH_FAILING
        ]
        assert [e.watch for e in failing] == ["w"]
    finally:
        store.close()
