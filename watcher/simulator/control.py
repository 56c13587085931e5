"""The simulator's /_sim control API: the world's summary, advancing the clock, staging
changes, the ground truth of what changed, faults and credit balances. Tests and the demo
drive the fake through it; the /v1 contract never exposes any of it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watcher.simulator.changes import StageError
from watcher.simulator.clock import iso, parse_iso
from watcher.simulator.entities import Json
from watcher.simulator.responses import error_response, json_response, new_request_id

if TYPE_CHECKING:
    from watcher.simulator.app import Simulator


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


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
    """POST /_sim/faults {"rate", "kinds", "slowSeconds"?, "holdAfter"?}: replaces the
    fault config (a body without ``holdAfter`` releases held requests)."""
    sim = _sim(request)
    body = await _json_body(request)
    if body is None:
        return _bad("body must be a JSON object")
    rate, kinds, slow = body.get("rate", 0.0), body.get("kinds", []), body.get("slowSeconds")
    if not isinstance(rate, int | float) or not isinstance(kinds, list):
        return _bad("rate must be a number and kinds a list")
    if slow is not None and not isinstance(slow, int | float):
        return _bad("slowSeconds must be a number")
    hold = body.get("holdAfter")
    if hold is not None and (not isinstance(hold, int) or isinstance(hold, bool) or hold < 0):
        return _bad("holdAfter must be an integer >= 0 or null")
    try:
        sim.faults.configure(float(rate), [str(k) for k in kinds], slow)
    except ValueError as exc:
        return _bad(str(exc))
    sim.faults.hold(hold)
    return _ok(sim.faults.state())


async def sim_fault_state(request: Request) -> Response:
    """GET /_sim/faults -> the fault config and the hold's counts (admitted, held)."""
    return _ok(_sim(request).faults.state())


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


CONTROL_ROUTES = [
    Route("/_sim/world", sim_world),
    Route("/_sim/advance", sim_advance, methods=["POST"]),
    Route("/_sim/change", sim_change, methods=["POST"]),
    Route("/_sim/truth", sim_truth),
    Route("/_sim/faults", sim_faults, methods=["POST"]),
    Route("/_sim/faults", sim_fault_state, methods=["GET"]),
    Route("/_sim/credits", sim_credits, methods=["POST"]),
]
