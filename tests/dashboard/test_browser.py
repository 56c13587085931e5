"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
daemon that detected changes from the simulator. Every request the page makes is
intercepted and recorded: loopback ones go through, anything else is refused, so no
request leaves 127.0.0.1 (the simulator's thumbnails are remote, so the placeholder
must stand in). The screenshot goes to a temporary folder, or to
``$WATCHER_DASHBOARD_SCREENSHOT`` (how ``docs/dashboard.png`` was made).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.receivers import free_port, wait_until
from watcher.simulator.testing import SimHandle, running_simulator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WAIT = 90.0
CAPTION = "<script>alert(1)</script> NEW gummies @everyone"

if not CHROMIUM.exists():  # CI installs it (.ci/run); a developer may not have it
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run should have installed chromium")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[SimHandle, str]]:
    """A simulator, and ``watcher run`` on it with the dashboard on a free loopback port;
    the watches take their baseline, one data refresh lands a new ad and a pin."""
    with running_simulator(seed=4, rate_limit=100_000, credits=1_000_000) as sim:
        world = sim.world()
        shop = world["shops"][0]["id"]  # type: ignore[index]
        handle = str(world["profiles"][0]["handle"]).lstrip("@")  # type: ignore[index]
        port = free_port()
        config = tmp_path / "watches.yaml"
        config.write_text(
            "version: 1\n"
            f'api: {{base_url: "{sim.base_url}", api_key: "{sim.api_key}", '
            "max_requests_per_minute: 6000}\n"
            f'state: {{database: "sqlite:///{tmp_path / "state.db"}"}}\n'
            f"health: {{port: {port}, host: 127.0.0.1}}\n"
            "budget: {monthly_credits: 3000}\n"
            'notifiers: {terminal: {urls: ["console://"]}}\n'
            "defaults: {notify: [terminal], every: 1s}\n"
            "watches:\n"
            f'  - {{name: rival-shop, shop: "{shop}"}}\n'
            f'  - {{name: creator, handle: "@{handle}"}}\n',
            "utf-8",
        )
        log = (tmp_path / "daemon.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "-c", str(config), "run"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "TRENDTRACK_API_KEY": ""},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _watches_polled(base), WAIT)
            sim.change("new_item", type="ad", shopId=shop, caption=CAPTION)
            sim.change("new_item", type="ad", shopId=shop)
            items = sim.api_get("/v1/tiktok/library", search=handle, searchArea="profile")
            mine = [
                i
                for i in items["data"]  # type: ignore[union-attr]
                if str(i["profile"]["handle"]).lstrip("@") == handle and not i["isPinned"]
            ]
            if mine:
                sim.change("pin", itemId=str(mine[0]["id"]))
            sim.advance_days(1)
            wait_until(lambda: _kinds(base) >= {"new_ad"}, WAIT)
            yield sim, base
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()


def _watches_polled(base: str) -> bool:
    try:
        body = httpx.get(f"{base}/api/watches", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    watches = body["watches"]
    return bool(watches) and all(w["last_poll"] and w["outcome"] != "failed" for w in watches)


def _kinds(base: str) -> set[str]:
    body = httpx.get(f"{base}/api/events?limit=100", timeout=5).json()
    return {str(e["kind"]) for e in body["events"]}


def test_the_dashboard_renders_filters_and_stays_on_loopback(
    daemon: tuple[SimHandle, str], tmp_path: Path
) -> None:
    """Events with the hostile caption as text, the 30-day chart and both watches render;
    the kind menu filters; thumbnails fall back to the placeholder; a screenshot is saved;
    every request the page made went to 127.0.0.1 (remote thumbnails were refused)."""
    _sim, base = daemon
    shot = Path(os.environ.get("WATCHER_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    requests: list[tuple[str, str]] = []
    refused: list[str] = []

    def route(r: sync_api.Route) -> None:
        url = r.request.url
        requests.append((url, r.request.resource_type))
        if urlsplit(url).hostname == "127.0.0.1":
            r.continue_()
        else:
            refused.append(url)
            r.abort()

    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh user data dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            context.route("**/*", route)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/")
            page.wait_for_load_state("networkidle")

            assert page.locator("tr.watch").count() == 2
            assert page.locator("#credits-chart rect.bar").count() == 30
            assert page.locator("#credits-chart line.share").count() == 1
            events = page.locator("li.event")
            assert events.count() >= 2
            assert page.locator("li.kind-new_ad").count() >= 2
            caption = page.locator("li.kind-new_ad p.caption", has_text="alert(1)").first
            assert "<script>alert(1)</script>" in caption.inner_text()
            assert "@everyone" not in caption.inner_text()  # the mention is broken
            links = page.locator("li.kind-new_ad a.tiktok")
            assert links.first.get_attribute("href", timeout=5000).startswith(  # type: ignore[union-attr]
                "https://www.tiktok.com/@"
            )
            first_image = page.locator("img.thumb-img").first
            wait_until(lambda: "broken" in (first_image.get_attribute("class") or ""), 20)
            page.screenshot(path=str(shot), full_page=True)

            page.select_option("select[name=kind]", "new_ad")  # the script submits it
            page.wait_for_url("**/?*kind=new_ad*")
            page.wait_for_load_state("networkidle")
            kinds = set(
                page.locator("li.event").evaluate_all("els => els.map(e => e.dataset.kind)")
            )
            assert kinds == {"new_ad"}
            page.select_option("select[name=watch]", "creator")
            page.wait_for_url("**/?*watch=creator*")
            watches = set(
                page.locator("li.event").evaluate_all("els => els.map(e => e.dataset.watch)")
            )
            assert watches <= {"creator"}

            page.goto(f"{base}/watches/rival-shop")
            assert page.locator("table.polls tbody tr").count() >= 2
            assert not errors, errors
        finally:
            context.close()

    assert shot.stat().st_size > 20_000
    local = [u for u, _kind in requests if urlsplit(u).hostname == "127.0.0.1"]
    assert any(u.endswith("/static/dashboard.js") for u in local)
    assert any(u.endswith("/static/dashboard.css") for u in local)
    for url, kind in requests:
        if urlsplit(url).hostname != "127.0.0.1":
            assert kind == "image", (url, kind)  # only thumbnails point elsewhere
    assert refused == [u for u, _kind in requests if urlsplit(u).hostname != "127.0.0.1"]
    assert all(urlsplit(u).scheme == "https" for u in refused)
