"""Reading an HTTP response: the JSON object of a success, or the typed ``ApiError`` of a failure.

Decisions follow ``error.code`` (then the HTTP status when the code is unknown or missing),
never the message. Which errors are worth retrying is decided by their class:
``RateLimited`` and ``ApiUnavailable`` are, every other ``ApiError`` is not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from watcher.errors import (
    ApiError,
    ApiUnavailable,
    AuthError,
    InsufficientCredits,
    NotFound,
    PollCrashed,
    RateLimited,
    ValidationDetail,
    ValidationFailed,
)
from watcher.trendtrack.meter import header_float

AUTH_CODES = frozenset(
    {
        "missing_api_key",
        "invalid_api_key",
        "credential_not_found",
        "credential_revoked",
        "credential_expired",
        "workspace_public_api_disabled",
        "workspace_public_api_suspended",
        "forbidden",
    }
)
_BY_CODE: dict[str, type[ApiError]] = {
    **dict.fromkeys(AUTH_CODES, AuthError),
    "insufficient_credits": InsufficientCredits,
    "not_found": NotFound,
    "validation_error": ValidationFailed,
    "rate_limited": RateLimited,
    "internal_error": ApiUnavailable,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: AuthError,
    402: InsufficientCredits,
    403: AuthError,
    404: NotFound,
    408: ApiUnavailable,
    429: RateLimited,
}
RETRYABLE: tuple[type[ApiError], ...] = (ApiUnavailable, RateLimited)
_MAX_MESSAGE = 300

Redactor = Callable[[str], str]


def json_object(response: httpx.Response, where: str) -> dict[str, object]:
    """The body of a successful response, which must be a JSON object."""
    request_id = response.headers.get("X-Request-Id")
    try:
        payload = response.json()
    except RecursionError as exc:  # nested deeper than the parser goes: the same on a retry
        raise PollCrashed(
            f"{where}: the response body is nested too deeply to read",
            status=response.status_code,
            request_id=request_id,
        ) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, numbers out of range
        raise ApiUnavailable(
            f"{where}: invalid JSON in the response body",
            status=response.status_code,
            request_id=request_id,
        ) from exc
    if not isinstance(payload, dict):
        raise ApiUnavailable(
            f"{where}: the response body is {type(payload).__name__}, not a JSON object",
            status=response.status_code,
            request_id=request_id,
        )
    return payload


def error_from(response: httpx.Response, where: str, redact: Redactor) -> ApiError:
    """The typed error of a non-2xx response."""
    status = response.status_code
    envelope = _envelope(response)
    code = _str(envelope.get("code"))
    request_id = _str(envelope.get("requestId")) or response.headers.get("X-Request-Id")
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status)
    if cls is None:
        cls = ApiUnavailable if status >= 500 else ApiError
    server_message = _str(envelope.get("message"))
    text = f"{where} failed"
    if server_message:
        text = f"{text}: {redact(server_message)[:_MAX_MESSAGE]}"
    if cls is RateLimited:
        return RateLimited(
            text,
            retry_after=retry_after(response),
            code=code,
            status=status,
            request_id=request_id,
        )
    details = _details(envelope, redact) if cls is ValidationFailed else ()
    return cls(text, code=code, status=status, request_id=request_id, details=details)


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait: ``Retry-After`` (seconds or HTTP date), else reset."""
    raw = response.headers.get("Retry-After")
    if raw is not None:
        seconds = header_float(response.headers, "Retry-After")
        if seconds is not None:
            return max(seconds, 0.0)
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
    reset = header_float(response.headers, "X-RateLimit-Reset")
    return max(reset, 0.0) if reset is not None else None


def _envelope(response: httpx.Response) -> dict[str, object]:
    try:
        payload = response.json()
    except (ValueError, RecursionError):
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _details(envelope: dict[str, object], redact: Redactor) -> tuple[ValidationDetail, ...]:
    details = envelope.get("details")
    entries = details.get("validationErrors") if isinstance(details, dict) else None
    if not isinstance(entries, list):
        return ()
    parsed: list[ValidationDetail] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        field = _str(entry.get("field"))
        if field is None:
            continue
        expected = entry.get("expected")
        if isinstance(expected, str):
            expected = [expected]
        parsed.append(
            ValidationDetail(
                field=field,
                location=_str(entry.get("location")),
                expected=tuple(redact(e) for e in expected or () if isinstance(e, str))
                if isinstance(expected, list)
                else (),
            )
        )
    return tuple(parsed)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
