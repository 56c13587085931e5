"""Pacing by the server's rate-limit window: once ``X-RateLimit-Remaining`` is spent, every
request waits until ``X-RateLimit-Reset`` (a 429 waits through ``Retry-After`` instead, in
the client's retry policy). Server-requested waits are capped at ``MAX_WAIT``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import httpx

from watcher.trendtrack.meter import header_float

logger = logging.getLogger("watcher.trendtrack")

MAX_WAIT: Final = 300.0
"""Cap on any server-requested wait (Retry-After, rate-limit reset), in seconds."""
RATE_FLOOR: Final = 0
"""Pause until the window resets once ``X-RateLimit-Remaining`` is at or below this."""


class RateWindow:
    """When the next request may go, from the last response's rate-limit headers."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]):
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._resume_at: float | None = None

    def note(self, response: httpx.Response) -> None:
        """Remember to pause when the server's window is spent (429s wait via Retry-After)."""
        if response.status_code == 429:
            return
        remaining = header_float(response.headers, "X-RateLimit-Remaining")
        reset = header_float(response.headers, "X-RateLimit-Reset")
        if remaining is None or reset is None or remaining > RATE_FLOOR or reset <= 0:
            return
        resume_at = self._clock() + min(reset, MAX_WAIT)
        if self._resume_at is None or resume_at > self._resume_at:
            self._resume_at = resume_at

    async def wait(self) -> None:
        """Sleep out a spent window (one waiter at a time), then let requests go."""
        async with self._lock:
            resume_at = self._resume_at
            if resume_at is None:
                return
            delay = resume_at - self._clock()
            if delay > 0:
                logger.debug("rate-limit window spent; pausing %.1fs", delay)
                await self._sleep(delay)
            if self._resume_at == resume_at:
                self._resume_at = None
