"""Issue 15 item 18: on SIGTERM with polls in flight the daemon waits as its log promises,
then cancels what is left, quietly (no CancelledError tracebacks at ERROR)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from tests.hardening.hostile_api import FRESHNESS, Route, freshness, hostile_api
from tests.hardening.test_config_hostile import until
from watcher.daemon import Daemon


def config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "watches.yaml"
    path.write_text(
        "version: 1\n"
        f'api: {{base_url: "{base_url}", api_key: tt_test_key, timeout_seconds: 60}}\n'
        f'state: {{database: "sqlite:///{tmp_path / "state.db"}"}}\n'
        "notifiers: {hook: {urls: ['json://127.0.0.1:9/']}}\n"
        "watches:\n  - {name: w, handle: acme, every: 2s, notify: [hook]}\n",
        "utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("delay", "grace", "finished"),
    [(3.0, 20.0, True), (60.0, 1.0, False)],
    ids=["poll-ends-within-grace", "poll-outlives-grace"],
)
async def test_stop_waits_for_polls_then_cancels_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, delay: float, grace: float, finished: bool
) -> None:
    """A poll shorter than the grace completes; a longer one is cancelled after it; no ERROR."""
    routes = {FRESHNESS: Route(freshness()), "/v1/tiktok/library": Route(b"{}", delay=delay)}
    with hostile_api(routes) as api, caplog.at_level(logging.INFO):
        daemon = Daemon(config(tmp_path, api.url), {}, stop_grace=grace)
        run = asyncio.create_task(daemon.run())
        await until(lambda: bool(daemon.in_flight) or run.done())
        assert daemon.in_flight, "a poll is in flight"
        stopped_at = time.monotonic()
        daemon.request_stop()
        assert await asyncio.wait_for(run, 60) == 0
        took = time.monotonic() - stopped_at
    assert "waiting up to" in caplog.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert "CancelledError" not in caplog.text
    if finished:
        assert "cancelled" not in caplog.text
        assert took >= 1.0, "it waited for the poll instead of cancelling it at once"
    else:
        assert "cancelled 1 polls still running after 1s" in caplog.text
        assert took < 15
