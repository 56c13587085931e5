"""Fault injection for the /v1 routes: 429s, 500s, slow answers, broken JSON, resets.

``POST /_sim/faults {"rate", "kinds"}`` configures it; each /v1 request then fails with
probability ``rate``, with a kind drawn from ``kinds``. The draws come from an RNG seeded
by the world seed, so a run is repeatable. The control API and the rest of the app never
see a fault.

``"holdAfter": N`` in the same body lets the next N /v1 requests through and then holds
every later one unanswered until a POST without it: a test kills its client while it
waits on request N + 1, at an exact point of a poll (``GET /_sim/faults`` says how many
are held).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from random import Random

from starlette.types import ASGIApp, Receive, Scope, Send

from watcher.simulator.responses import error_response, new_request_id

FAULT_KINDS = ("429", "500", "slow", "bad_json", "reset")
_INCOMPLETE = "ASGI callable returned without completing response."


class FaultPlan:
    """How often and how /v1 requests fail; ``draw`` decides for one request."""

    def __init__(self, seed: int, slow_seconds: float = 2.0) -> None:
        self._rng = Random(f"faults-{seed}")
        self.rate = 0.0
        self.kinds: tuple[str, ...] = ()
        self.slow_seconds = slow_seconds
        self.hold_after: int | None = None
        self.admitted = 0
        """/v1 requests let through since the hold was set."""
        self.held = 0
        """/v1 requests waiting on the hold now."""
        self._release: asyncio.Event | None = None

    def configure(
        self, rate: float, kinds: Sequence[str], slow_seconds: float | None = None
    ) -> None:
        """Set the fault rate (0..1) and kinds; raises ValueError on anything else."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        if rate > 0 and not kinds:
            raise ValueError("kinds must name at least one fault when rate > 0")
        self.rate = rate
        self.kinds = tuple(kinds)
        if slow_seconds is not None:
            self.slow_seconds = max(0.0, slow_seconds)

    def hold(self, after: int | None) -> None:
        """Hold every /v1 request after the next ``after`` (None: release the held ones).

        Call it from the server's event loop (the control route does)."""
        if after is not None and after < 0:
            raise ValueError("holdAfter must be an integer >= 0")
        if self._release is not None:
            self._release.set()
        self._release = asyncio.Event() if after is not None else None
        self.hold_after = after
        self.admitted = 0

    async def admit(self) -> None:
        """Wait while the hold says this request must (returns at once without one)."""
        release = self._release
        if release is None or self.hold_after is None:
            return
        if self.admitted < self.hold_after:
            self.admitted += 1
            return
        self.held += 1
        try:
            await release.wait()
        finally:
            self.held -= 1

    def state(self) -> dict[str, object]:
        """What ``GET /_sim/faults`` answers."""
        return {
            "rate": self.rate,
            "kinds": list(self.kinds),
            "holdAfter": self.hold_after,
            "admitted": self.admitted,
            "held": self.held,
        }

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        if self.rate <= 0 or not self.kinds:
            return None
        if self._rng.random() >= self.rate:
            return None
        return self._rng.choice(self.kinds)


class FaultMiddleware:
    """ASGI middleware that applies a ``FaultPlan`` to /v1 requests."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = None
        if scope["type"] == "http" and str(scope["path"]).startswith("/v1/"):
            await self.plan.admit()
            fault = self.plan.draw()
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "slow":
            await asyncio.sleep(self.plan.slow_seconds)
            await self.app(scope, receive, send)
        elif fault == "reset":
            # Start a response and stop mid-body: the server then drops the connection.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b'{"requestId":', "more_body": True})
        elif fault == "bad_json":
            body = b'{"requestId": "' + new_request_id().encode() + b'", "data": [{"id": '
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        else:
            request_id = new_request_id()
            if fault == "429":
                response = error_response(
                    429,
                    "rate_limited",
                    "Too many requests (injected)",
                    request_id,
                    headers={"Retry-After": "1"},
                )
            else:
                response = error_response(
                    500, "internal_error", "Internal error (injected)", request_id
                )
            await response(scope, receive, send)


class _DropIncompleteResponseLog(logging.Filter):
    """Hides uvicorn's complaint about the responses a ``reset`` fault cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _INCOMPLETE


def quiet_reset_faults() -> None:
    """Install the log filter once on uvicorn's error logger."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropIncompleteResponseLog) for f in logger.filters):
        logger.addFilter(_DropIncompleteResponseLog())
