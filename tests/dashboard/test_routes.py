"""The dashboard's routes over the real app: JSON API, filters, paging, escaping, the
token, the security headers; against a real SQLite file seeded with hostile items."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.alerts.corpus import UNSAFE_ANYWHERE
from tests.dashboard.conftest import NOW, SECRETS, TOKEN, World, client_for, config
from watcher.config import HealthSettings, parse_settings
from watcher.dashboard import Source
from watcher.health import Health, Metrics, create_app, start_health
from watcher.status import event_json
from watcher.store import Store

PAGES = ("/", "/watches/rival", "/watches/acme-shop", "/?kind=new_ad", "/?watch=rival")


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text between tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.script_text if self._in_script else self.text).append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


async def _events(client: httpx.AsyncClient, query: str = "") -> list[dict[str, object]]:
    response = await client.get(f"/api/events?limit=500{query}")
    assert response.status_code == 200, response.text
    events: list[dict[str, object]] = response.json()["events"]
    return events


async def test_api_watches_lists_watches_credits_and_the_daily_chart(
    client: httpx.AsyncClient,
) -> None:
    """/api/watches: each watch with its target, polls and credits, the totals, the
    budget's daily share (3,100 over December's 31 days) and 30 days of credits."""
    response = await client.get("/api/watches")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    watches = {w["name"]: w for w in body["watches"]}
    assert set(watches) == {"acme-shop", "rival"}
    assert watches["acme-shop"]["credits_today"] == 40
    assert watches["acme-shop"]["target"].startswith("shop 3f8aa146")
    assert watches["rival"]["target"] == "@rivalbrand"
    assert watches["rival"]["last_poll"] == "2026-12-20T15:25:00+00:00"
    assert watches["rival"]["next_poll"] == "2026-12-20T21:25:00+00:00"
    assert body["credits_today"] == 50
    assert body["balance"] == 50_000
    assert body["budget"] == 3100
    assert body["budget_daily_share"] == 100.0
    days = body["credits_per_day"]
    assert len(days) == 30
    assert days[-1] == {"date": "2026-12-20", "credits": 50}
    assert days[0] == {"date": "2026-11-21", "credits": 40 + 29 + 10}


async def test_api_events_have_the_fields_of_watcher_events_json(
    client: httpx.AsyncClient, world: World
) -> None:
    """Each event carries every key of ``watcher events --json``, with the same values,
    plus the item's handle, caption, TikTok link and thumbnail."""
    events = await _events(client)
    views = world.store.outbox.events(limit=500)
    assert [e["id"] for e in events] == [v.id for v in views]
    for got, view in zip(events, views, strict=True):
        expected = event_json(view)
        assert {k: got[k] for k in expected} == expected
    rank = next(e for e in events if e["kind"] == "rank_jump")
    assert rank["link"] == f"https://www.tiktok.com/@rivalbrand/video/{rank['tiktok_id']}"
    assert rank["figures"] == {"rank_before": 48, "rank_after": 7}
    assert rank["thumbnail_url"] is None  # http:// is not kept
    first = events[-1]
    assert first["thumbnail_url"] == "https://p16.tiktokcdn.example/cover/1.jpg"


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", 14),
        ("&watch=acme-shop", 11),
        ("&watch=rival", 3),
        ("&kind=pinned", 1),
        ("&kind=new_ad,rank_jump", 12),
        ("&kind=new_ad&kind=pinned", 12),
        ("&watch=rival&kind=new_ad", 0),
        ("&since=24h", 0),
        ("&since=31h", 14),
        ("&since=2026-12-19T11:00:00Z", 5),
        ("&watch=nobody", 0),
    ],
)
async def test_api_events_filters(client: httpx.AsyncClient, query: str, count: int) -> None:
    """watch, kind (repeated or comma-separated), since (a duration or an instant) combine."""
    events = await _events(client, query)
    assert len(events) == count
    for e in events:
        if "watch=" in query and "nobody" not in query:
            assert e["watch"] == query.split("watch=")[1].split("&", maxsplit=1)[0]


async def test_api_events_pages_newest_first_without_gaps(client: httpx.AsyncClient) -> None:
    """limit=4 pages through every event once, newest first, following ``next``."""
    seen: list[int] = []
    url: str | None = "/api/events?limit=4&kind=new_ad"
    pages = 0
    while url:
        body = (await client.get(url)).json()
        assert len(body["events"]) <= 4
        seen += [int(e["id"]) for e in body["events"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert len(seen) == 11
    assert seen == sorted(set(seen), reverse=True)


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=ten", "kind=bogus", "since=yesterday", "before=abc"],
)
async def test_bad_parameters_are_400_with_the_reason(
    client: httpx.AsyncClient, query: str
) -> None:
    """A parameter that cannot be understood is a 400 naming it, on the API and the page."""
    api = await client.get(f"/api/events?{query}")
    assert api.status_code == 400
    assert query.split("=", maxsplit=1)[0] in api.json()["error"]
    page = await client.get(f"/?{query}")
    assert page.status_code == 400
    assert "Bad filter" in page.text


async def test_pages_escape_every_hostile_caption_and_handle(client: httpx.AsyncClient) -> None:
    """No tag, attribute or link from TikTok text reaches the page; invisible, control and
    bidi characters are dropped and pings broken; the captions are still shown as text."""
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
        page = parse(response.text)
        scripts = page.all("script")
        assert scripts == [{"src": "/static/dashboard.js", "defer": None}], path
        assert not "".join(page.script_text).strip()
        for name, attrs in page.tags:
            assert not [a for a in attrs if a.startswith("on")], (name, attrs)
            assert "style" not in attrs, (name, attrs)
        for a in page.all("a"):
            href = a.get("href") or ""
            assert href.startswith(("/", "https://www.tiktok.com/@")), href
            assert "evil.example" not in href
        for img in page.all("img"):
            assert (img.get("src") or "").startswith("https://p16.tiktokcdn.example/"), img
        text = "".join(page.text)
        for unsafe in UNSAFE_ANYWHERE:
            assert unsafe not in response.text, (path, unsafe)
        if path == "/":
            assert "<script>alert(1)</script>" in text  # shown as text, not run
            assert "evil.example|totally safe" in text
            assert "rivalbrand/video/" in response.text
    hostile = parse((await client.get("/watches/rival")).text)
    links = [a.get("href") or "" for a in hostile.all("a")]
    assert any("%22%3E%3Cscript%3E" in h for h in links)  # the handle, percent-encoded


async def test_thumbnails_load_lazily_without_referrer(client: httpx.AsyncClient) -> None:
    """Every thumbnail is lazy with no referrer; javascript: and http: ones are dropped
    (the placeholder stands in), so 11 of the 13 item events have an image."""
    page = parse((await client.get("/")).text)
    images = page.all("img")
    assert len(images) == 11
    for img in images:
        assert img["loading"] == "lazy"
        assert img["referrerpolicy"] == "no-referrer"
        assert img["alt"] == ""
    assert len([a for a in page.all("a") if "thumb" in (a.get("class") or "")]) == 13


async def test_security_headers_on_every_dashboard_response(client: httpx.AsyncClient) -> None:
    """CSP allows scripts and styles from the app only (no inline, no remote), images from
    https; no referrer, no sniffing, no framing."""
    for path in (*PAGES, "/api/watches", "/api/events", "/static/dashboard.js", "/watches/x"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["img-src"] == "'self' https: data:"
        assert "unsafe" not in csp
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
    page = (await client.get("/")).text
    assert "<style" not in page
    for _name, attrs in parse(page).tags:  # nothing points to plain http (text may say it)
        assert not [v for v in attrs.values() if v and v.startswith("http:")], attrs


async def test_no_secret_on_any_page_or_api(client: httpx.AsyncClient) -> None:
    """The API key and the notifier URLs' secrets appear nowhere, even where an ops
    event's error quoted a URL; deliveries are named by notifier and position."""
    bodies = [(await client.get(p)).text for p in (*PAGES, "/api/watches", "/api/events")]
    for body in bodies:
        for secret in SECRETS:
            assert secret not in body
        assert "json://" not in body.replace("json://***", "")
    assert "marketing[1]" in bodies[0]


async def test_watch_page_shows_its_polls_and_only_its_events(client: httpx.AsyncClient) -> None:
    """/watches/NAME: the watch's card, its polls newest first, its events; unknown: 404."""
    response = await client.get("/watches/rival")
    assert response.status_code == 200
    page = parse(response.text)
    events = [t for t in page.all("li") if t.get("data-event-id")]
    assert {e["data-watch"] for e in events} == {"rival"}
    assert len(events) == 3
    assert "2026-12-20 15:25" in response.text  # the latest poll
    assert len(page.all("tr")) > 30
    filtered = parse((await client.get("/watches/rival?kind=pinned")).text)
    assert [t["data-kind"] for t in filtered.all("li") if t.get("data-event-id")] == ["pinned"]
    missing = await client.get("/watches/nobody")
    assert missing.status_code == 404


async def test_page_filters_by_watch_and_kind(client: httpx.AsyncClient) -> None:
    """/?watch=&kind= narrows the list and keeps the choice selected in the form."""
    page = parse((await client.get("/?watch=acme-shop&kind=new_ad")).text)
    events = [t for t in page.all("li") if t.get("data-event-id")]
    assert len(events) == 11
    assert {(e["data-watch"], e["data-kind"]) for e in events} == {("acme-shop", "new_ad")}
    selected = [o.get("value") for o in page.all("option") if "selected" in o]
    assert selected == ["acme-shop", "new_ad"]
    body = next(attrs for tag, attrs in page.tags if tag == "body")
    assert body["data-poll"] == "/api/events?watch=acme-shop&kind=new_ad&limit=1"
    assert body["data-latest"] == events[0]["data-event-id"]


async def test_older_events_link_pages_the_list(client: httpx.AsyncClient) -> None:
    """With more events than the limit, an 'Older events' link continues below the last."""
    page = parse((await client.get("/?limit=5")).text)
    ids = [int(t["data-event-id"] or 0) for t in page.all("li") if t.get("data-event-id")]
    older = next(a["href"] for a in page.all("a") if "older" in (a.get("class") or ""))
    assert older == f"/?before={ids[-1]}&limit=5"
    rest = parse((await client.get(older or "")).text)
    more = [int(t["data-event-id"] or 0) for t in rest.all("li") if t.get("data-event-id")]
    assert max(more) < min(ids)
    body = next(attrs for tag, attrs in rest.tags if tag == "body")
    assert body["data-poll"] == ""  # an older page does not reload itself


async def test_static_files_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    """The stylesheet, script and placeholder come from the app; anything else is 404."""
    for name, kind in (
        ("dashboard.css", "text/css"),
        ("dashboard.js", "text/javascript"),
        ("placeholder.svg", "image/svg+xml"),
    ):
        response = await client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)
    assert (await client.get("/static/../health.py")).status_code == 404
    assert (await client.get("/static/nope.js")).status_code == 404


async def test_while_the_daemon_starts_the_dashboard_says_so() -> None:
    """Before the daemon has its config and store, pages and API answer 503, /healthz works."""
    source = Source(lambda: None, lambda: None, lambda: NOW)
    app = create_app(Health(), Metrics(), source)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.get("/")).status_code == 503
        assert (await client.get("/api/events")).json() == {"error": "the daemon is starting"}
        assert (await client.get("/healthz")).status_code == 503  # not ticking yet, but served


# --- the token ------------------------------------------------------------------------


async def test_token_guards_every_route_but_healthz(world: World) -> None:
    """Without the token: 401 everywhere but /healthz; with a bearer header, the query
    parameter or the cookie a ?token= visit sets: 200. A wrong token is refused."""
    async with client_for(world, TOKEN) as client:
        assert (await client.get("/healthz")).status_code in {200, 503}
        for path in ("/", "/watches/rival", "/api/watches", "/api/events", "/metrics"):
            refused = await client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in refused.text
            wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            near = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"})
            assert near.status_code == 401
            ok = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200, path
        assert (await client.get(f"/api/events?token={TOKEN}x")).status_code == 401
        assert (await client.get("/static/dashboard.css")).status_code == 401
        visit = await client.get(f"/?token={TOKEN}")
        assert visit.status_code == 200
        cookie = visit.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert TOKEN not in cookie
        assert (await client.get("/static/dashboard.css")).status_code == 200  # by cookie
        assert (await client.get("/api/events?limit=1")).status_code == 200
        client.cookies.set("watcher_dashboard", "forged")
        assert (await client.get("/api/events")).status_code == 401


async def test_token_from_the_config_guards_the_served_port(tmp_path: Path) -> None:
    """health.token: ${VAR} from the environment guards the real server on loopback."""
    text = config(f"sqlite:///{tmp_path / 's.db'}", token='"${DASH_TOKEN}"')
    settings = parse_settings(text, "watches.yaml", {"DASH_TOKEN": TOKEN}, tmp_path)
    assert settings.health.token is not None
    assert TOKEN not in repr(settings.health)
    store = Store(settings.state.database)
    try:
        source = Source(lambda: settings, lambda: store, lambda: NOW)
        health = HealthSettings(0, "127.0.0.1", settings.health.token)
        server = await start_health(health, Health(), Metrics(), source)
        assert server is not None
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.get("/api/watches")).status_code == 401
                auth = {"Authorization": f"Bearer {TOKEN}"}
                response = await client.get("/api/watches", headers=auth)
                assert response.status_code == 200
                assert [w["name"] for w in response.json()["watches"]] == ["acme-shop", "rival"]
        finally:
            await server.stop()
    finally:
        store.close()
