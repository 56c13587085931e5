"""Delivery end to end: the simulator, `watcher once`, apprise's real plugins, and local
Slack, Telegram, SMTP and JSON receivers; then a `watcher once` killed mid-delivery."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.alerts.conftest import SLACK_URL, TELEGRAM_URL
from tests.alerts.corpus import FORBIDDEN, UNSAFE_ANYWHERE
from tests.receivers import (
    HttpReceiver,
    Received,
    SmtpReceiver,
    point_slack_at,
    point_telegram_at,
)
from watcher import app
from watcher.config import load_settings
from watcher.models import ITEM_KINDS, Event
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.store import Store

SETUP_KEY = "tt_sim_setup"
HOSTILE = "<!channel> @everyone <b>x</b> [click](http://evil)"
TIKTOK_ID = re.compile(r"\b\d{19}\b")
EVENTS = "[new_ad, new_video, pinned, unpinned, ad_stopped, ad_resumed]"


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    with running_simulator(
        seed=3, api_keys=("tt_sim_demo", SETUP_KEY), rate_limit=100_000, credits=100_000
    ) as handle:
        yield handle


def write_config(
    sim: SimHandle, tmp_path: Path, urls: list[str], shops: list[str], names: list[str]
) -> Path:
    """A watches.yaml with one notifier (``urls``) and one watch per shop."""
    quoted = ", ".join(f'"{u}"' for u in urls)
    lines = [
        "version: 1",
        f'api: {{base_url: "{sim.base_url}", api_key: "{sim.api_key}",'
        " max_requests_per_minute: 600}",
        f'state: {{database: "sqlite:///{tmp_path / "state.db"}"}}',
        f"notifiers: {{team: {{urls: [{quoted}]}}}}",
        f"defaults: {{notify: [team], events: {EVENTS}}}",
        "watches:",
        *(f'  - {{name: {n}, shop: "{s}"}}' for n, s in zip(names, shops, strict=True)),
    ]
    path = tmp_path / "watches.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def shop_ids(sim: SimHandle, count: int) -> list[str]:
    shops = sim.world()["shops"]
    assert isinstance(shops, list)
    return [str(s["id"]) for s in shops[:count]]


def unpinned_item_of(sim: SimHandle, shop: str) -> str:
    """An unpinned item of ``shop``, read with the setup key (the watcher's credits stay)."""
    response = httpx.get(
        f"{sim.base_url}/v1/shops/{shop}/tiktok/library",
        params={"limit": 50},
        headers={"Authorization": f"Bearer {SETUP_KEY}"},
    )
    response.raise_for_status()
    items = response.json()["data"]
    return str(next(i["id"] for i in items if not i["isPinned"]))


def recorded_events(path: Path) -> list[Event]:
    """Every item event the run recorded, oldest first."""
    store = Store(f"sqlite:///{path.parent / 'state.db'}")
    try:
        views = store.outbox.events(limit=10_000)
    finally:
        store.close()
    return [v.event for v in reversed(views) if v.event.kind in ITEM_KINDS and v.event.item]


def assert_inert(text: str, forbidden: tuple[str, ...]) -> None:
    for bad in forbidden:
        assert bad.lower() not in text.lower(), bad


def json_text(request: Received) -> str:
    payload = request.json()
    assert isinstance(payload, dict)
    return f"{payload['title']}\n{payload['message']}"


async def test_an_event_found_by_once_reaches_slack_telegram_email_and_json(
    sim: SimHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile new ad and a pin reach four real channels in one digest each, inert."""
    with (
        HttpReceiver.slack() as slack,
        HttpReceiver.telegram() as telegram,
        HttpReceiver.json() as hook,
        SmtpReceiver() as smtp,
    ):
        point_slack_at(monkeypatch, slack)
        point_telegram_at(monkeypatch, telegram)
        [shop] = shop_ids(sim, 1)
        path = write_config(
            sim, tmp_path, [SLACK_URL, TELEGRAM_URL, smtp.url(), hook.url], [shop], ["rival-shop"]
        )
        settings = load_settings(path, {})
        store = app.open_store(settings)
        baseline = await app.poll_once(settings, store, settings.watches, dry_run=False)
        assert [o.outcome for o in baseline.outcomes] == ["baseline"]

        new_ad = sim.change("new_item", type="ad", shopId=shop, caption=HOSTILE)
        pinned = sim.change("pin", itemId=unpinned_item_of(sim, shop))
        sim.advance_days(1)
        result = await app.poll_once(settings, store, settings.watches, dry_run=False)
        store.close()

        [outcome] = result.outcomes
        events = list(outcome.events)
        assert {new_ad, pinned} <= {e.item.id for e in events if e.item}
        assert result.delivery is not None
        assert (result.delivery.sent, result.delivery.failed) == (4 * len(events), 0)
        items = [e.item for e in events if e.item]
        links = [str(i.link) for i in items]
        assert all(link.startswith("https://www.tiktok.com/@") for link in links)

        [slack_request] = slack.wait_for(1)
        attachment = slack_request.json()["attachments"][0]  # type: ignore[index]
        slack_text = f"{attachment['title']}\n{attachment['text']}"
        assert_inert(slack_text, FORBIDDEN)
        for markup in re.findall(r"<[^>]*>", slack_text):
            assert markup.startswith("<https://www.tiktok.com/@"), markup
        assert "&lt;!channel&gt;" in slack_text

        [telegram_request] = telegram.wait_for(1)
        payload = telegram_request.json()
        assert isinstance(payload, dict)
        assert payload["parse_mode"] == "HTML"
        telegram_text = str(payload["text"])
        assert_inert(telegram_text, FORBIDDEN)
        for tag in re.findall(r"<(/?[a-z-]+)", telegram_text):
            assert tag in ("b", "/b", "a", "/a"), tag
        assert "&lt;b&gt;x&lt;/b&gt;" in telegram_text

        [mail] = smtp.wait_for(1)
        html_part, text_part = mail.get_body(("html",)), mail.get_body(("plain",))
        assert html_part is not None
        assert text_part is not None
        html_body, text_body = html_part.get_content(), text_part.get_content()
        assert "rival-shop" in str(mail["Subject"])
        assert_inert(html_body, FORBIDDEN)
        assert_inert(text_body, UNSAFE_ANYWHERE)

        [hook_request] = hook.wait_for(1)
        hook_text = json_text(hook_request)
        assert_inert(hook_text, UNSAFE_ANYWHERE)

        for text in (slack_text, telegram_text, html_body, text_body, hook_text):
            assert "rival-shop" in text
            for item in items:
                assert str(item.tiktok_id) in text
        for text in (slack_text, telegram_text, html_body, hook_text):
            for link in links:
                assert link in text
        for receiver in (slack, telegram, hook):
            assert len(receiver.requests) == 1, "one digest, not a flood"
        assert len(smtp.wait_for(1)) == 1


def run_once(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "-c", str(path), "once"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TRENDTRACK_API_KEY": ""},
    )


async def test_once_killed_mid_delivery_repeats_only_the_message_in_flight(
    sim: SimHandle, tmp_path: Path
) -> None:
    """SIGKILL while message 2 of 3 is in flight: the rerun sends 2 and 3; 1 never again."""
    with HttpReceiver.json() as hook:
        shops = shop_ids(sim, 3)
        names = [f"shop{n}" for n in range(3)]
        path = write_config(sim, tmp_path, [hook.url], shops, names)
        settings = load_settings(path, {})
        store = app.open_store(settings)
        await app.poll_once(settings, store, settings.watches, dry_run=False)
        store.close()
        for shop in shops:
            sim.change("new_item", type="ad", shopId=shop)
        sim.advance_days(1)

        hook.hold(after=1)
        killed = run_once(path)
        try:
            hook.wait_for(2, timeout=60)  # message 1 answered, message 2 arrived and held
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.wait(10)
        hook.release()
        assert run_once(path).wait(60) == 0

        requests = hook.requests
        in_flight = json_text(requests[1])
        texts = Counter(json_text(r) for r in requests)
        assert texts[in_flight] == 2, "the kill landed mid-delivery; the rerun resent it"
        assert len(requests) == len(names) + 1
        assert all(n == 1 for text, n in texts.items() if text != in_flight), "nothing else twice"
        events = recorded_events(path)
        assert {e.watch for e in events} == set(names)
        assert len(texts) == len(names), "one digest per watch's poll"
        arrived = Counter(i for text in texts for i in set(TIKTOK_ID.findall(text)))
        assert set(arrived) == {str(e.item.tiktok_id) for e in events if e.item}, "none lost"
        assert set(arrived.values()) == {1}, "each id in one message"
        assert not set(TIKTOK_ID.findall(json_text(requests[0]))) & set(
            TIKTOK_ID.findall(in_flight)
        )
