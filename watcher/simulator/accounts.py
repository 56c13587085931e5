"""Credits and rate limits per API key.

Credits: a recurring plan allowance (the starting balance) spent first, then top-up
credits; ``X-Credits-Source`` says which paid. Rate limit: a fixed window of 60 real
seconds per key, started by the window's first request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from watcher.simulator.entities import Json

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RateVerdict:
    """The outcome of counting one request against its key's window."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` headers (and ``Retry-After`` when refused)."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


@dataclass(slots=True)
class Account:
    """One API key's money and request window."""

    key: str
    plan_limit: int
    used: int = 0
    topup: int = 0
    window_start: float | None = None
    window_count: int = 0

    @property
    def recurring_remaining(self) -> int:
        return max(0, self.plan_limit - self.used)

    @property
    def balance(self) -> int:
        """Credits left in total: what a reservation is checked against."""
        return self.recurring_remaining + self.topup

    def set_balance(self, balance: int) -> None:
        """Make the total balance ``balance``: plan credits first, the rest as top-up."""
        balance = max(0, balance)
        self.used = max(0, self.plan_limit - balance)
        self.topup = max(0, balance - self.plan_limit)

    def charge(self, cost: int) -> str:
        """Spend ``cost`` credits (the balance covers it); returns the credits source."""
        from_plan = min(cost, self.recurring_remaining)
        from_topup = cost - from_plan
        self.used += from_plan
        self.topup -= from_topup
        if from_topup and from_plan:
            return "hybrid"
        return "topup" if from_topup else "recurring"

    def usage_json(self) -> Json:
        """The ``credits`` object of ``GET /v1/usage``."""
        return {
            "balance": self.balance,
            "recurring": {
                "limit": self.plan_limit,
                "used": min(self.used, self.plan_limit),
                "remaining": self.recurring_remaining,
            },
            "topup": {"balance": self.topup},
            "totalRemaining": self.balance,
        }


class Accounts:
    """Every accepted key, each with its own balance and rate window."""

    def __init__(
        self,
        keys: Sequence[str],
        credits: int,
        rate_limit: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not keys:
            raise ValueError("at least one API key is needed")
        self._accounts = {key: Account(key, credits) for key in keys}
        self.first_key = keys[0]
        self.rate_limit = rate_limit
        self._monotonic = monotonic

    def get(self, key: str) -> Account | None:
        """The account of ``key``, or None for an unknown key."""
        return self._accounts.get(key)

    def count(self, account: Account) -> RateVerdict:
        """Count one request in the key's window; refused when the window is full."""
        now = self._monotonic()
        if account.window_start is None or now - account.window_start >= WINDOW_SECONDS:
            account.window_start = now
            account.window_count = 0
        reset = math.ceil(account.window_start + WINDOW_SECONDS - now)
        if account.window_count >= self.rate_limit:
            return RateVerdict(False, self.rate_limit, 0, reset)
        account.window_count += 1
        remaining = self.rate_limit - account.window_count
        return RateVerdict(True, self.rate_limit, remaining, reset)
