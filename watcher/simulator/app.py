"""The simulator's Starlette app: the /v1 contract (the /_sim control API is in control.py).

Every /v1 request first brings the world up to the clock (running any refresh due), so
what a request sees only ever changes at a refresh. Then: auth, rate limit, validation,
credit reservation, the answer, settlement. Routes are thin; the world and query
modules hold the logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
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
from watcher.simulator.clock import SIM_START, SimClock
from watcher.simulator.control import CONTROL_ROUTES
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
    """Refuse every [chosen] parameter, move updatedAt on metric updates, enforce the
    result window (page x limit <= 10,000)."""
    unstable_ties: bool = False
    """Items with equal sort keys come back in any order, differently on every request."""
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
        self.tie_rng = random.Random(config.seed) if config.unstable_ties else None

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
    rows, total = select(sim.world, query, shop_id, shuffle_ties=sim.tie_rng)
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


async def _listing(request: Request, route: str) -> Response:
    """The three list routes (``library``, ``query``, ``shop``): authorize, parse the
    query string or the body, page."""
    sim, request_id = _sim(request), new_request_id()
    sim.sync()
    gate = sim.authorize(request, request_id)
    if isinstance(gate, Response):
        return gate
    documented = sim.config.documented_only
    if route == "query":
        parsed = parse_body(await request.body(), documented_only=documented)
    else:
        parsed = parse_query_string(
            request.query_params.multi_items(),
            shop_route=route == "shop",
            documented_only=documented,
        )
    if isinstance(parsed, list):
        return _invalid(parsed, request_id, gate[1].headers())
    shop_id = None
    if route == "shop":
        shop_id = str(request.path_params["shopId"]).lower()
        if shop_id not in sim.world.shops:
            return error_response(
                404, "not_found", f"Shop {shop_id} not found", request_id, headers=gate[1].headers()
            )
    return _list_page(sim, parsed, gate, request_id, shop_id)


async def library(request: Request) -> Response:
    """GET /v1/tiktok/library."""
    return await _listing(request, "library")


async def library_query(request: Request) -> Response:
    """POST /v1/tiktok/library/query."""
    return await _listing(request, "query")


async def shop_library(request: Request) -> Response:
    """GET /v1/shops/{shopId}/tiktok/library."""
    return await _listing(request, "shop")


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
        *CONTROL_ROUTES,
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
