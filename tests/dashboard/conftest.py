"""A state database with a month of history and hostile items, served by the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.alerts.corpus import NASTY_CAPTIONS
from watcher.app import register_settings_secrets
from watcher.config import Settings, parse_settings
from watcher.dashboard import Source
from watcher.health import Health, Metrics, create_app
from watcher.models import Event, EventKind, Item, ItemStatus, ItemType, ops_event
from watcher.store import PollRecord, Store

NOW = datetime(2026, 12, 20, 15, 30, tzinfo=UTC)
API_KEY = "tt_live_dashboard_secret_81f3"
HOOK_SECRET = "hooksecret-5b1d0e"
SMTP_SECRET = "smtp-pass-c0ffee"
TOKEN = "dash-token-3e9a7c41"
SECRETS = (API_KEY, HOOK_SECRET, SMTP_SECRET)
SHOP = "3f8aa146-6f96-46e8-9781-64db5166f9a8"
ROUTES = {kind: [("marketing", 2)] for kind in EventKind}


def config(database: str, *, token: str | None = None) -> str:
    health = f"health: {{port: 8080, token: {token}}}" if token else "health: {port: 8080}"
    return f"""\
version: 1
api:
  api_key: {API_KEY}
budget:
  monthly_credits: 3100
state:
  database: "{database}"
{health}
notifiers:
  marketing:
    urls: ["json://user:{HOOK_SECRET}@localhost/hook", "mailtos://a:{SMTP_SECRET}@example.com"]
defaults:
  notify: [marketing]
watches:
  - name: acme-shop
    shop: {SHOP}
    type: ad
  - name: rival
    handle: "@rivalbrand"
    every: 6h
"""


def item(n: int, caption: str, **extra: object) -> Item:
    fields: dict[str, object] = {
        "id": f"item-{n}",
        "tiktok_id": f"7078586231734{n:06d}",
        "type": ItemType.AD,
        "status": ItemStatus.ACTIVE,
        "handle": "rivalbrand",
        "caption": caption,
        "views": 1000 * n,
        "thumbnail_url": f"https://p16.tiktokcdn.example/cover/{n}.jpg",
    }
    fields.update(extra)
    return Item(**fields)  # type: ignore[arg-type]


@dataclass
class World:
    settings: Settings
    store: Store
    events: list[Event]


def seed(store: Store) -> list[Event]:
    """A month of polls and credits, one event per hostile caption, pins, a rank jump,
    an ops event whose error names a secret URL."""
    for day in reversed(range(40)):
        at = NOW - timedelta(days=day, hours=1)
        for watch, credits in (("acme-shop", 40 + day), ("rival", 10)):
            store.apply_poll(
                PollRecord(watch, at, 120, "ok", credits=credits, remaining=50_000 - day), ROUTES
            )
    store.apply_poll(PollRecord("rival", NOW - timedelta(minutes=5), 80, "ok"), ROUTES)
    events: list[Event] = []
    at = NOW - timedelta(hours=30)
    for n, (name, caption) in enumerate(NASTY_CAPTIONS.items(), start=1):
        events.append(
            Event(f"acme|new_ad|{name}", EventKind.NEW_AD, "acme-shop", at, item(n, caption))
        )
        at += timedelta(minutes=10)
    hostile = item(
        90,
        "pinned",
        handle='evil"><script>alert(1)</script>',
        thumbnail_url='javascript:alert("x")',
    )
    events.append(Event("rival|pinned|90", EventKind.PINNED, "rival", at, hostile))
    events.append(
        Event(
            "rival|rank|91",
            EventKind.RANK_JUMP,
            "rival",
            at + timedelta(minutes=1),
            item(91, "climbing", thumbnail_url="http://insecure.example/x.jpg"),
            {"rank_before": 48, "rank_after": 7},
        )
    )
    events.append(
        ops_event(
            EventKind.WATCH_FAILING,
            "rival",
            at + timedelta(minutes=2),
            {"error": f"post to json://user:{HOOK_SECRET}@localhost/hook failed"},
        )
    )
    for ev in events:
        assert store.outbox.record(ev, ROUTES)
    return events


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    """The seeded state, on SQLite and on PostgreSQL (the dashboard's queries on both)."""
    settings = parse_settings(config(db_url), "watches.yaml", {}, tmp_path)
    register_settings_secrets(settings)
    store = Store(settings.state.database)
    try:
        yield World(settings, store, seed(store))
    finally:
        store.close()


def client_for(world: World, token: str | None = None) -> httpx.AsyncClient:
    """The real app (health, metrics and dashboard) over ASGI, reading ``world``."""
    source = Source(lambda: world.settings, lambda: world.store, lambda: NOW)
    app = create_app(Health(), Metrics(), source, token)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(world) as c:
        yield c
