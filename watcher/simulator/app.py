"""The simulator's Starlette app: the /v1 contract and the /_sim control API.

Every /v1 request first brings the world up to the clock (running any refresh due), so
what a request sees only ever changes at a refresh. Then: auth, rate limit, validation,
credit reservation, the answer, settlement. Routes are thin; the world and query
modules hold the logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watcher.simulator.accounts import Account, Accounts, RateVerdict
from watcher.simulator.changes import StageError
from watcher.simulator.clock import SIM_START, SimClock, iso, parse_iso
from watcher.simulator.entities import Json
from watcher.simulator.faults import FaultMiddleware, FaultPlan
from watcher.simulator.params import WorldParams
from watcher.simulator.query import FieldError, ListQuery, parse_body, parse_query_string, select
from watcher.simulator.responses import error_response, json_response, new_request_id
from watcher.simulator.world import World

DEFAULT_API_KEY = "tt_sim_demo"
TICK_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How to run a simulator: the command-line flags plus the world's size and start."""

    seed: int = 1
    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    credits: int = 10000
    rate_limit: int = 60
    speed: float = 0.0
    documented_only: bool = False
    params: WorldParams = field(default_factory=WorldParams)
    start: datetime = SIM_START
    slow_seconds: float = 2.0


class Simulator:
    """A running simulator's state: world, clock, accounts and faults."""

    def __init__(self, config: SimConfig, monotonic: Callable[[], float] = time.monotonic):
        self.config = config
        self.clock = SimClock(config.start, config.speed, monotonic)
        self.world = World(
            config.seed, config.params, start=config.start, documented_only=config.documented_only
        )
        self.accounts = Accounts(
            config.api_keys or (DEFAULT_API_KEY,), config.credits, config.rate_limit, monotonic
        )
        self.faults = FaultPlan(config.seed, config.slow_seconds)

    def sync(self) -> datetime:
        """Run every refresh due by now; returns now."""
        now = self.clock.now()
        self.world.advance_to(now)
        return now

    def authorize(
        self, request: Request, request_id: str
    ) -> tuple[Account, RateVerdict] | Response:
        """The caller's account and rate verdict, or the 401/429 answer."""
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return error_response(
                401,
                "missing_api_key",
                "Missing API key: send Authorization: Bearer <key>",
                request_id,
            )
        account = self.accounts.get(key)
        if account is None:
            return error_response(401, "invalid_api_key", "Invalid API key", request_id)
        verdict = self.accounts.count(account)
        if not verdict.allowed:
            return error_response(
                429, "rate_limited", "Rate limit exceeded", request_id, headers=verdict.headers()
            )
        return account, verdict


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


def _metered(
    account: Account, verdict: RateVerdict, cost: int, request_id: str, body: Json
) -> Response:
    source = account.charge(cost)
    headers = {
        **verdict.headers(),
        "X-Usage-Cost": str(cost),
        "X-Credits-Used": str(cost),
        "X-Credits-Remaining": str(account.balance),
        "X-Credits-Source": source,
    }
    return json_response(body, request_id, headers=headers)


def _list_page(
    sim: Simulator,
    query: ListQuery,
    gate: tuple[Account, RateVerdict],
    request_id: str,
    shop_id: str | None = None,
) -> Response:
    account, verdict = gate
    if account.balance < query.limit:
        return _short(account, verdict, query.limit, request_id)
    rows, total = select(sim.world, query, shop_id)
    body: Json = {
        "requestId": request_id,
        "data": [sim.world.item_json(item) for item in rows],
        "pagination": {
            "page": query.page,
            "limit": query.limit,
            "total": total,
            "totalPages": -(-total // query.limit),
        },
    }
    return _metered(account, verdict, len(rows), request_id, body)


def _short(account: Account, verdict: RateVerdict, needed: int, request_id: str) -> Response:
    message = f"Insufficient credits: {needed} needed, {account.balance} available"
    return error_response(
        402, "insufficient_credits", message, request_id, headers=verdict.headers()
    )


def _invalid(errors: list[FieldError], request_id: str, headers: dict[str, str]) -> Response:
    """400 validation_error listing every field that failed."""
    return error_response(
        400, "validation_error", "Validation failed", request_id, errors=errors, headers=headers
    )


async def library(request: Request) -> Response:
    """GET /v1/tiktok/library."""
    sim, request_id = _sim(request), new_request_id()
    sim.sync()
    gate = sim.authorize(request, request_id)
    if isinstance(gate, Response):
        return gate
    parsed = parse_query_string(
        request.query_params.multi_items(),
        shop_route=False,
        documented_only=sim.config.documented_only,
    )
    if isinstance(parsed, list):
        return _invalid(parsed, request_id, gate[1].headers())
    return _list_page(sim, parsed, gate, request_id)


async def library_query(request: Request) -> Response:
    """POST /v1/tiktok/library/query."""
    sim, request_id = _sim(request), new_request_id()
    sim.sync()
    gate = sim.authorize(request, request_id)
    if isinstance(gate, Response):
        return gate
    parsed = parse_body(await request.body(), documented_only=sim.config.documented_only)
    if isinstance(parsed, list):
        return _invalid(parsed, request_id, gate[1].headers())
    return _list_page(sim, parsed, gate, request_id)


async def shop_library(request: Request) -> Response:
    """GET /v1/shops/{shopId}/tiktok/library."""
    sim, request_id = _sim(request), new_request_id()
    sim.sync()
    gate = sim.authorize(request, request_id)
    if isinstance(gate, Response):
        return gate
    parsed = parse_query_string(
        request.query_params.multi_items(),
        shop_route=True,
        documented_only=sim.config.documented_only,
    )
    if isinstance(parsed, list):
        return _invalid(parsed, request_id, gate[1].headers())
    shop_id = str(request.path_params["shopId"]).lower()
    if shop_id not in sim.world.shops:
        return error_response(
            404, "not_found", f"Shop {shop_id} not found", request_id, headers=gate[1].headers()
        )
    return _list_page(sim, parsed, gate, request_id, shop_id)


async def item_detail(request: Request) -> Response:
    """GET /v1/tiktok/library/{itemId}: one item, with links and source; costs 1."""
    sim, request_id = _sim(request), new_request_id()
    sim.sync()
    gate = sim.authorize(request, request_id)
    if isinstance(gate, Response):
        return gate
    account, verdict = gate
    if request.query_params:
        errors = [
            FieldError(
                f"query-string.{name}", "query-string", (f"property {name} should not exist",)
            )
            for name in request.query_params
        ]
        return error_response(
            400,
            "validation_error",
            "Validation failed",
            request_id,
            errors=errors,
            headers=verdict.headers(),
        )
    if account.balance < 1:
        return _short(account, verdict, 1, request_id)
    ident = str(request.path_params["itemId"])
    item = sim.world.indexed(ident)
    if item is None:
        return error_response(
            404, "not_found", f"Item {ident} not found", request_id, headers=verdict.headers()
        )
    body: Json = {"requestId": request_id, "data": sim.world.detail_json(item)}
    return _metered(account, verdict, 1, request_id, body)


async def usage(request: Request) -> Response:
    """GET /v1/usage: the caller's balance; free."""
    sim, request_id = _sim(request), new_request_id()
    sim.sync()
    gate = sim.authorize(request, request_id)
    if isinstance(gate, Response):
        return gate
    account, verdict = gate
    body: Json = {"requestId": request_id, "credits": account.usage_json()}
    return json_response(body, request_id, headers=verdict.headers())


async def freshness(request: Request) -> Response:
    """GET /v1/system/freshness: when the data was last refreshed; free."""
    sim, request_id = _sim(request), new_request_id()
    now = sim.sync()
    gate = sim.authorize(request, request_id)
    if isinstance(gate, Response):
        return gate
    body: Json = {"requestId": request_id, "status": "ok", "data": sim.world.freshness(now)}
    return json_response(body, request_id, headers=gate[1].headers())


async def health(request: Request) -> Response:
    """GET /v1/health: liveness, no key needed."""
    request_id = new_request_id()
    return json_response({"requestId": request_id, "status": "ok"}, request_id)


async def _not_found(request: Request, exc: Exception) -> Response:
    request_id = new_request_id()
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 405:
        return error_response(405, "method_not_allowed", "Method not allowed", request_id)
    return error_response(404, "not_found", f"No route {request.url.path}", request_id)


# control API


async def _json_body(request: Request) -> dict[str, object] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _bad(message: str, status: int = 400) -> Response:
    code = "not_found" if status == 404 else "validation_error"
    return error_response(status, code, message, new_request_id())


def _ok(body: Json) -> Response:
    return json_response(body, new_request_id())


async def sim_world(request: Request) -> Response:
    """GET /_sim/world."""
    sim = _sim(request)
    return _ok(sim.world.summary(sim.sync()))


async def sim_advance(request: Request) -> Response:
    """POST /_sim/advance {"seconds"} -> {"now", "refreshes"}."""
    sim = _sim(request)
    body = await _json_body(request)
    seconds = body.get("seconds") if body else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return _bad("seconds must be a number >= 0")
    sim.sync()
    now = sim.clock.advance(float(seconds))
    refreshes = sim.world.advance_to(now)
    return _ok({"now": iso(now), "refreshes": refreshes})


async def sim_change(request: Request) -> Response:
    """POST /_sim/change {"kind", ...} -> {"itemId"}: lands at the next refresh."""
    sim = _sim(request)
    body = await _json_body(request)
    if body is None:
        return _bad("body must be a JSON object")
    sim.sync()
    kind = body.pop("kind", None)
    try:
        item_id = sim.world.stage(str(kind), body)
    except StageError as exc:
        return _bad(str(exc), exc.status)
    return _ok({"itemId": item_id})


async def sim_truth(request: Request) -> Response:
    """GET /_sim/truth?since=ISO -> {"changes": [...]} (strictly after ``since``)."""
    sim = _sim(request)
    sim.sync()
    raw = request.query_params.get("since")
    since = parse_iso(raw) if raw else None
    if raw and since is None:
        return _bad("since must be an ISO 8601 instant")
    return _ok({"changes": sim.world.truth(since)})


async def sim_faults(request: Request) -> Response:
    """POST /_sim/faults {"rate", "kinds", "slowSeconds"?}."""
    sim = _sim(request)
    body = await _json_body(request)
    if body is None:
        return _bad("body must be a JSON object")
    rate, kinds, slow = body.get("rate", 0.0), body.get("kinds", []), body.get("slowSeconds")
    if not isinstance(rate, int | float) or not isinstance(kinds, list):
        return _bad("rate must be a number and kinds a list")
    if slow is not None and not isinstance(slow, int | float):
        return _bad("slowSeconds must be a number")
    try:
        sim.faults.configure(float(rate), [str(k) for k in kinds], slow)
    except ValueError as exc:
        return _bad(str(exc))
    return _ok({"rate": sim.faults.rate, "kinds": list(sim.faults.kinds)})


async def sim_credits(request: Request) -> Response:
    """POST /_sim/credits {"balance", "key"?}: set a key's balance (default: the first)."""
    sim = _sim(request)
    body = await _json_body(request) or {}
    balance = body.get("balance")
    if not isinstance(balance, int) or isinstance(balance, bool) or balance < 0:
        return _bad("balance must be an integer >= 0")
    key = str(body.get("key") or sim.accounts.first_key)
    account = sim.accounts.get(key)
    if account is None:
        return _bad(f"unknown key {key!r}", 404)
    account.set_balance(balance)
    return _ok({"key": key, "balance": account.balance})


def create_app(config: SimConfig | None = None, *, simulator: Simulator | None = None) -> Starlette:
    """The ASGI app for ``config`` (or an existing ``simulator``)."""
    sim = simulator or Simulator(config or SimConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick(sim)) if sim.clock.speed > 0 else None
        try:
            yield
        finally:
            if ticker:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    routes = [
        Route("/v1/health", health),
        Route("/v1/usage", usage),
        Route("/v1/system/freshness", freshness),
        Route("/v1/tiktok/library", library),
        Route("/v1/tiktok/library/query", library_query, methods=["POST"]),
        Route("/v1/tiktok/library/{itemId}", item_detail),
        Route("/v1/shops/{shopId}/tiktok/library", shop_library),
        Route("/_sim/world", sim_world),
        Route("/_sim/advance", sim_advance, methods=["POST"]),
        Route("/_sim/change", sim_change, methods=["POST"]),
        Route("/_sim/truth", sim_truth),
        Route("/_sim/faults", sim_faults, methods=["POST"]),
        Route("/_sim/credits", sim_credits, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, plan=sim.faults)],
        exception_handlers={404: _not_found, 405: _not_found},
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app


async def _tick(sim: Simulator) -> None:
    """With a running clock, run refreshes as they fall due even when nobody asks."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        sim.sync()
