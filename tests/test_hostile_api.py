"""Hostile API data against the real client, poller and SQLite store (issue 15 items 9,
11, 12): a local fake API (an httpx transport) serves what a broken or hostile server
would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from watcher.config import Watch, parse_settings
from watcher.models import EventKind
from watcher.planner import Freshness, Outcome
from watcher.poller import Capabilities, Poller
from watcher.store import Store
from watcher.trendtrack.client import TrendTrackClient

CLOCK = "2026-04-10T00:00:00Z"
FUTURE = "9999-12-31T23:00:00Z"
FRESH = Freshness("2026-04-10", datetime(2026, 4, 10, 1, tzinfo=UTC))
LATER = Freshness("2026-04-11", datetime(2026, 4, 11, 1, tzinfo=UTC))


def _item(n: int, updated: str, **fields: object) -> dict[str, object]:
    return {
        "id": f"tiktok_{n}",
        "type": "ad",
        "status": "active",
        "isPinned": False,
        "publishedAt": "2026-04-01T00:00:00Z",
        "createdAt": "2026-04-01T00:00:00Z",
        "indexedAt": "2026-04-01T00:00:00Z",
        "updatedAt": updated,
        **fields,
    }


Serve = Callable[[httpx.Request], tuple[list[dict[str, object]], int, int | None]]
"""A request -> (rows, total, the X-Credits-Used header it claims; None: the row count)."""


def _transport(serve: Serve, log: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        log.append(str(request.url))
        rows, total, used = serve(request)
        body = {"data": rows, "pagination": {"page": 1, "limit": 50, "total": total}}
        headers = {"X-Credits-Used": str(len(rows) if used is None else used)}
        return httpx.Response(200, json=body, headers=headers)

    return httpx.MockTransport(handler)


def _watch(extra: str = "") -> Watch:
    config = f"""
version: 1
api: {{api_key: k}}
notifiers: {{n: {{urls: ["json://localhost/"]}}}}
defaults: {{notify: [n]}}
watches:
  - {{name: w, hashtag: creatine{extra}}}
"""
    return parse_settings(config, "watches.yaml", env={}).watches[0]


async def _poll(tmp: Path, serve: Serve, watch: Watch, *freshes: Freshness) -> list[Outcome]:
    log: list[str] = []
    store = Store(f"sqlite:///{tmp / 'state.db'}")
    client = TrendTrackClient("http://fake.test", "k", transport=_transport(serve, log))
    poller = Poller(client, store, Capabilities(updated_after=True))
    outcomes = []
    try:
        for fresh in freshes:
            done = await asyncio.wait_for(poller.poll(watch, fresh, {}), timeout=30)
            outcomes.append(done.outcome)
    finally:
        await client.aclose()
        store.close()
    return outcomes


def _page(request: httpx.Request) -> int:
    return int(request.url.params.get("page", "1"))


def test_a_row_from_year_9999_does_not_blind_the_watch(tmp_path: Path) -> None:
    """After a future-stamped row, a later real change is still read and announced."""
    refresh = {"n": 0}

    def serve(request: httpx.Request) -> tuple[list[dict[str, object]], int, int | None]:
        if "updatedAfter" not in request.url.params:
            return [_item(1, CLOCK)], 1, None  # the baseline's one row
        rows = [_item(2, FUTURE)] if refresh["n"] == 1 else []
        if refresh["n"] == 2:
            rows = [_item(3, "2026-04-11T00:00:00Z", createdAt="2026-04-11T00:00:00Z")]
        return rows, len(rows), None

    store_path = tmp_path
    watch = _watch()
    asyncio.run(_poll(store_path, serve, watch, FRESH))
    refresh["n"] = 1
    asyncio.run(_poll(store_path, serve, watch, Freshness("2026-04-10b", FRESH.at)))
    refresh["n"] = 2
    asyncio.run(_poll(store_path, serve, watch, LATER))
    store = Store(f"sqlite:///{store_path / 'state.db'}")
    try:
        kinds = [(v.event.kind, v.event.item.id) for v in store.outbox.events() if v.event.item]
        assert (EventKind.NEW_AD, "tiktok_3") in kinds
        watermark = store.memory.load("w").watermark
        assert watermark is not None
        assert watermark.year == 2026
    finally:
        store.close()


def test_full_pages_claiming_no_credits_stop_at_the_cap(tmp_path: Path) -> None:
    """X-Credits-Used: 0 on full pages of a huge total: the poll ends at the cap."""
    requests = {"n": 0}

    def serve(request: httpx.Request) -> tuple[list[dict[str, object]], int, int | None]:
        requests["n"] += 1
        base = _page(request) * 100
        limit = int(request.url.params.get("limit", "50"))
        rows = [_item(base + i, CLOCK) for i in range(limit)]
        return rows, 10**9, 0

    outcomes = asyncio.run(_poll(tmp_path, serve, _watch(", max_credits_per_poll: 20"), FRESH))
    assert outcomes == [Outcome.BASELINE]
    outcomes = asyncio.run(_poll(tmp_path, serve, _watch(", max_credits_per_poll: 20"), LATER))
    assert outcomes == [Outcome.CAPPED]
    assert requests["n"] <= 3


def test_an_id_twice_with_conflicting_pins_gives_one_event(tmp_path: Path) -> None:
    """A page listing one id pinned and unpinned gives one event, matching its final state."""
    refresh = {"n": 0}

    def serve(request: httpx.Request) -> tuple[list[dict[str, object]], int, int | None]:
        if refresh["n"] == 0:
            return [_item(1, CLOCK)], 1, None
        newer = _item(1, "2026-04-11T00:00:00Z", lastUnpinnedAt="2026-04-11T00:00:00Z")
        older = _item(
            1,
            "2026-04-10T12:00:00Z",
            isPinned=True,
            pin={"isCurrent": True, "lastPinnedAt": "2026-04-10T12:00:00Z"},
        )
        return [newer, older], 2, None

    watch = _watch(", events: [pinned, unpinned], on_first_run: notify_all")
    asyncio.run(_poll(tmp_path, serve, watch, FRESH))
    refresh["n"] = 1
    asyncio.run(_poll(tmp_path, serve, watch, LATER))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        kinds = [v.event.kind for v in store.outbox.events() if v.event.kind != EventKind.BASELINE]
        assert kinds in ([], [EventKind.UNPINNED])
        assert store.memory.load("w").items["tiktok_1"].pinned is False
    finally:
        store.close()
