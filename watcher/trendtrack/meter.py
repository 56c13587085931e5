"""Credit accounting: what every response said it cost and what balance it left.

Credits are the user's money, so the client records each response's ``X-Credits-*`` headers
here; budget logic reads the totals. Records name the route template, never the full URL.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """The credit headers of one response."""

    method: str
    route: str
    status: int
    credits_used: int | None
    credits_remaining: int | None
    credits_source: str | None
    request_id: str | None

    @classmethod
    def from_response(cls, method: str, route: str, response: httpx.Response) -> UsageRecord:
        headers = response.headers
        used = header_int(headers, "X-Credits-Used")
        return cls(
            method=method,
            route=route,
            status=response.status_code,
            credits_used=used if used is not None else header_int(headers, "X-Usage-Cost"),
            credits_remaining=header_int(headers, "X-Credits-Remaining"),
            credits_source=headers.get("X-Credits-Source") or None,
            request_id=headers.get("X-Request-Id") or None,
        )


UsageCallback = Callable[[UsageRecord], None]


class CreditMeter:
    """Running totals of one client's credit use; keeps the latest ``max_records`` records."""

    __slots__ = ("_balance", "_records", "_requests", "_source", "_total_used")

    def __init__(self, max_records: int = 1000) -> None:
        self._records: deque[UsageRecord] = deque(maxlen=max_records)
        self._total_used = 0
        self._requests = 0
        self._balance: int | None = None
        self._source: str | None = None

    @property
    def total_used(self) -> int:
        """Credits spent by every request this client sent."""
        return self._total_used

    @property
    def requests(self) -> int:
        """Responses received, errors and free routes included."""
        return self._requests

    @property
    def balance(self) -> int | None:
        """The last balance the server reported, if any."""
        return self._balance

    @property
    def source(self) -> str | None:
        """The last ``X-Credits-Source`` seen: ``recurring``, ``topup`` or ``hybrid``."""
        return self._source

    @property
    def records(self) -> tuple[UsageRecord, ...]:
        """The latest records, oldest first."""
        return tuple(self._records)

    def record(self, record: UsageRecord) -> None:
        self._records.append(record)
        self._requests += 1
        self._total_used += record.credits_used or 0
        if record.credits_remaining is not None:
            self._balance = record.credits_remaining
        if record.credits_source is not None:
            self._source = record.credits_source

    def note_balance(self, balance: int | None) -> None:
        """Update the balance from a body (``GET /v1/usage``) rather than headers."""
        if balance is not None:
            self._balance = balance

    def __repr__(self) -> str:
        return (
            f"CreditMeter(total_used={self._total_used}, balance={self._balance}, "
            f"requests={self._requests})"
        )


def header_int(headers: httpx.Headers, name: str) -> int | None:
    """An integer header, or ``None`` when absent or unreadable."""
    value = header_float(headers, name)
    return int(value) if value is not None else None


def header_float(headers: httpx.Headers, name: str) -> float | None:
    """A numeric header, or ``None`` when absent, unreadable or not finite."""
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None
