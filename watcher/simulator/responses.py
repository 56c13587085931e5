"""Response shapes shared by the routes and the fault injector: request ids, error envelope."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence

from starlette.responses import JSONResponse

from watcher.simulator.entities import Json
from watcher.simulator.query import FieldError

_COUNTER = itertools.count(1)
_PREFIX = secrets.token_hex(3)


def new_request_id() -> str:
    """A request id unique within this process (and unlikely to repeat across runs)."""
    return f"req_{_PREFIX}{next(_COUNTER):08x}"


def json_response(
    body: Json, request_id: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """``body`` as JSON with ``X-Request-Id`` and any extra headers."""
    return JSONResponse(body, status, headers={"X-Request-Id": request_id, **(headers or {})})


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The API's error envelope; validation errors go under ``details.validationErrors``."""
    error: Json = {"code": code, "message": message, "requestId": request_id}
    if errors:
        error["details"] = {"validationErrors": [e.to_json() for e in errors]}
    return json_response({"error": error}, request_id, status, headers)
