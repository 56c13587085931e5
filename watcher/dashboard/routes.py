"""The dashboard's routes on the health port, and the token that guards them.

``GET /`` (watches, the credits chart, the latest events, filterable), ``GET
/watches/{name}`` (one watch's history), ``GET /api/watches``, ``GET /api/events`` and
the shipped ``/static/`` files. Handlers are plain functions: Starlette runs them in its
thread pool, so a database read never blocks the daemon's event loop. They read the state
database only, never the API.

Every dashboard response carries a Content-Security-Policy with no inline and no remote
script (images may come from ``https:`` for TikTok's thumbnails), ``no-referrer`` and
``nosniff``. With a token, :class:`TokenGuard` lets through only requests carrying it
(``Authorization: Bearer``, ``?token=``, or the cookie a ``?token=`` visit sets so the
page's own assets and script load), compared in constant time; ``/healthz`` stays open.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher.config import Settings
from watcher.dashboard.pages import Pages, query_url, static_files
from watcher.dashboard.view import (
    BadQuery,
    Filters,
    credits_chart,
    event_api_json,
    events_view,
    local_time,
    parse_filters,
    poll_lines,
    watch_api_json,
    watch_cards,
)
from watcher.errors import StoreError
from watcher.store import Reads, Store

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
COOKIE = "watcher_dashboard"
OPEN_PATHS = frozenset({"/healthz"})


@dataclass(frozen=True, slots=True)
class Source:
    """Where the dashboard reads from: the daemon's current config and store (None
    while it starts), and its clock."""

    settings: Callable[[], Settings | None]
    store: Callable[[], Store | None]
    clock: Callable[[], datetime]


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


class _Unavailable(Exception):
    """The daemon has no config or store yet (it is starting)."""


Context = tuple[Settings, Store, Reads, datetime]


class _Dashboard:
    """The handlers, over one source; plain methods that Starlette runs in threads."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.pages = Pages()
        self.assets = static_files()

    def routes(self) -> list[Route]:
        return [
            Route("/", self._page(self.index), methods=["GET", "HEAD"]),
            Route("/watches/{name:path}", self._page(self.watch), methods=["GET", "HEAD"]),
            Route("/api/watches", self._api(self.api_watches), methods=["GET", "HEAD"]),
            Route("/api/events", self._api(self.api_events), methods=["GET", "HEAD"]),
            Route("/static/{name}", self.static, methods=["GET", "HEAD"]),
        ]

    # --- plumbing -----------------------------------------------------------------------

    def _context(self) -> Context:
        settings, store = self.source.settings(), self.source.store()
        if settings is None or store is None:
            raise _Unavailable
        return settings, store, Reads(store), self.source.clock()

    def _html(self, name: str, status: int = 200, **values: object) -> Response:
        return _secured(HTMLResponse(self.pages.render(name, **values), status_code=status))

    def _message(self, status: int, title: str, text: str) -> Response:
        settings, now = self.source.settings(), self.source.clock()
        return self._html(
            "message.html.j2",
            status,
            title=title,
            subtitle="",
            message=text,
            latest="",
            poll_url="",
            now=local_time(now, settings.timezone) if settings else now.isoformat(),
            timezone=settings.timezone.key if settings else "UTC",
        )

    def _page(
        self, render: Callable[[Request, Context], Response]
    ) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return render(request, self._context())
            except _Unavailable:
                return self._message(503, "Starting", "The daemon is starting; reload soon.")
            except BadQuery as exc:
                return self._message(400, "Bad filter", str(exc))
            except StoreError:
                return self._message(
                    503, "Database unavailable", "The state database cannot be read right now."
                )

        return endpoint

    def _api(
        self, render: Callable[[Request, Context], dict[str, object]]
    ) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                body = render(request, self._context())
            except _Unavailable:
                return _json({"error": "the daemon is starting"}, 503)
            except BadQuery as exc:
                return _json({"error": str(exc)}, 400)
            except StoreError:
                return _json({"error": "the state database cannot be read"}, 503)
            return _json(body, 200)

        return endpoint

    @staticmethod
    def _poll_url(filters: Filters) -> str:
        """What the page's script asks for newer events; none on an older page."""
        if filters.before is not None:
            return ""
        return query_url("/api/events", filters.query(before=None, limit=1, since=None))

    # --- pages --------------------------------------------------------------------------

    def index(self, request: Request, context: Context) -> Response:
        settings, store, reads, now = context
        filters = parse_filters(_params(request), now)
        cards, totals = watch_cards(settings, store, reads, now)
        events = events_view(settings, reads, filters, now)
        return self._html(
            "index.html.j2",
            title="Dashboard",
            subtitle=f"{len(settings.watches)} watches",
            cards=cards,
            totals=totals,
            chart=credits_chart(settings, reads, now),
            events=events,
            latest=events.cards[0].id if events.cards else "",
            poll_url=self._poll_url(filters),
            now=local_time(now, settings.timezone),
            timezone=settings.timezone.key,
        )

    def watch(self, request: Request, context: Context) -> Response:
        settings, store, reads, now = context
        name = str(request.path_params["name"])
        filters = parse_filters({**_params(request), "watch": [name]}, now)
        cards, _totals = watch_cards(settings, store, reads, now)
        card = next((c for c in cards if c.status.name == name), None)
        if card is None:
            return self._message(404, "No such watch", f"No watch is named {name}.")
        events = events_view(settings, reads, filters, now)
        return self._html(
            "watch.html.j2",
            title=name,
            subtitle=card.target,
            card=card,
            chart=credits_chart(settings, reads, now, name),
            events=events,
            polls=poll_lines(reads.polls(name), now, settings.timezone),
            path=request.url.path,
            latest=events.cards[0].id if events.cards else "",
            poll_url=self._poll_url(filters),
            now=local_time(now, settings.timezone),
            timezone=settings.timezone.key,
        )

    # --- JSON ---------------------------------------------------------------------------

    def api_watches(self, _request: Request, context: Context) -> dict[str, object]:
        settings, store, reads, now = context
        cards, totals = watch_cards(settings, store, reads, now)
        strategies = reads.strategies()
        chart = credits_chart(settings, reads, now)
        return {
            "watches": [watch_api_json(c, strategies.get(c.status.name)) for c in cards],
            **totals,
            "budget_daily_share": round(chart.share, 2) if chart.share is not None else None,
            "credits_per_day": [
                {"date": b.day.isoformat(), "credits": b.credits} for b in chart.bars
            ],
        }

    def api_events(self, request: Request, context: Context) -> dict[str, object]:
        _settings, _store, reads, now = context
        filters = parse_filters(_params(request), now)
        found = reads.events(
            watch=filters.watch,
            kinds=filters.kinds,
            since=filters.since,
            before=filters.before,
            limit=filters.limit,
        )
        after = found.before
        return {
            "events": [event_api_json(v) for v in found.events],
            "next": query_url("/api/events", filters.query(before=after))
            if after is not None
            else None,
        }

    def static(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in self.assets:
            return _secured(Response("not found", 404, media_type="text/plain"))
        body, kind = self.assets[name]
        response = _secured(Response(body, media_type=kind))
        response.headers["Cache-Control"] = "no-cache"
        return response


def dashboard_routes(source: Source) -> list[Route]:
    """The dashboard's routes, to be mounted next to ``/healthz`` and ``/metrics``."""
    return _Dashboard(source).routes()


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


class _AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped: TikTok text may hold lone surrogates,
    which UTF-8 cannot encode; ``\\ud800`` survives intact for the client to judge."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


def _json(body: dict[str, object], status: int) -> Response:
    return _secured(_AsciiJSON(body, status_code=status))


# --- the token --------------------------------------------------------------------------


def _cookie_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the token itself is not stored."""
    return hmac.new(token.encode(), b"watcher dashboard session", hashlib.sha256).hexdigest()


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


class TokenGuard:
    """ASGI middleware: every HTTP route but ``/healthz`` needs the token.

    Accepted as ``Authorization: Bearer <token>``, as ``?token=<token>`` (a link to the
    page) or as the cookie a ``?token=`` visit sets (HttpOnly, SameSite=Strict), so the
    page's stylesheet, script and image requests, which carry no header, load too.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token
        self._cookie = _cookie_value(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        by_query = any(_same(t, self._token) for t in query.get("token", []))
        if by_query or self._by_header(headers) or self._by_cookie(headers):
            await self.app(scope, receive, self._with_cookie(send) if by_query else send)
            return
        response = _secured(
            JSONResponse({"error": "a token is needed"}, status_code=401)
            if scope["path"].startswith("/api/") or scope["path"] == "/metrics"
            else HTMLResponse(
                "<!doctype html><title>watcher</title><p>This dashboard needs its token: "
                "open it as <code>/?token=…</code>.</p>",
                status_code=401,
            )
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="watcher"'
        await response(scope, receive, send)

    def _by_header(self, headers: Headers) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and _same(value.strip(), self._token)

    def _by_cookie(self, headers: Headers) -> bool:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:  # a malformed cookie header is no cookie
            return False
        morsel = cookies.get(COOKIE)
        return morsel is not None and _same(morsel.value, self._cookie)

    def _with_cookie(self, send: Send) -> Send:
        cookie = f"{COOKIE}={self._cookie}; HttpOnly; SameSite=Strict; Path=/"

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message["headers"], (b"set-cookie", cookie.encode())],
                }
            await send(message)

        return sending
