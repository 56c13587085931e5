"""The simulator's clock and its ISO 8601 helpers.

Simulated time starts at a fixed UTC instant. With ``speed`` 0 it moves only when told
(``advance``); with ``speed`` X it runs X simulated seconds per real second on top of every
manual advance. Real time is read through an injected monotonic function so tests stay exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

SIM_START = datetime(2026, 4, 24, 6, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` suffix and whole seconds, as the API writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text (a date or naive time means UTC), or None."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def midnight_on_or_before(moment: datetime) -> datetime:
    """The UTC midnight starting the day of ``moment``."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class SimClock:
    """Simulated time: ``start`` + manual advances + ``speed`` * real seconds elapsed."""

    def __init__(
        self,
        start: datetime = SIM_START,
        speed: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._start = start
        self._speed = speed
        self._monotonic = monotonic
        self._real_origin = monotonic()
        self._offset = 0.0

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def now(self) -> datetime:
        """The current simulated instant."""
        running = self._speed * (self._monotonic() - self._real_origin)
        return self._start + timedelta(seconds=self._offset + running)

    def advance(self, seconds: float) -> datetime:
        """Move simulated time forward by ``seconds``; returns the new instant."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds
        return self.now()
