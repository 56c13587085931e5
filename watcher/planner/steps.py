"""PURE vocabulary of the planner: the requests it asks for, what a poll ends with, and the
progress it keeps between polls.

A request is plain data the poller executes against the API client; the answer goes back
to the planner unchanged (a ``Page``, a count, an ``Item``, or the ``ApiError`` raised).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from watcher.detect import Detection
from watcher.trendtrack.params import ListParams, QueryBody

Params = ListParams | QueryBody


class Outcome(StrEnum):
    """How one poll went."""

    OK = "ok"
    BASELINE = "baseline"
    CAPPED = "capped"
    """Cut by ``max_credits_per_poll``; the next poll goes on from where it stopped."""
    SKIPPED = "skipped"
    """The refresh gate: nothing can have changed (free)."""
    FAILED = "failed"
    PAUSED = "paused"
    """Polling is paused (401 until the config changes, 402 until refilled)."""
    SHED = "shed"
    """A low-priority poll skipped while the month's forecast exceeds the budget."""

    @property
    def failure(self) -> bool:
        """Whether it counts as a failed poll of the watch (``watch_failing``)."""
        return self is Outcome.FAILED

    @property
    def healthy(self) -> bool:
        """Whether it proves the watch works (closes a ``watch_failing`` episode)."""
        return self in _HEALTHY

    @property
    def polled(self) -> bool:
        """Whether the poll went past the gates (read the API or failed trying)."""
        return self not in _IDLE


_HEALTHY = frozenset({Outcome.OK, Outcome.BASELINE, Outcome.CAPPED, Outcome.SKIPPED})
_IDLE = frozenset({Outcome.SKIPPED, Outcome.PAUSED, Outcome.SHED})


@dataclass(frozen=True, slots=True)
class Resume:
    """Where an unfinished (capped) change feed goes on at the next poll.

    ``page``: the next page of the ascending ``updatedAfter`` feed. ``offset`` and
    ``mark``: the next row of the descending fallback scan, and the ``updatedAt`` of the
    row it started from, which becomes the watermark once the scan completes.
    """

    page: int | None = None
    offset: int | None = None
    mark: datetime | None = None
    order: int | None = None
    """The documented-only strategy: the next row of the scope's ``newest`` order to read
    while its baseline is read (over several polls), or ``REDO`` for a refresh whose
    reconcile was cut by ``max_credits_per_poll`` (the next poll does it again)."""

    @property
    def pending(self) -> bool:
        return self.page is not None or self.offset is not None or self.order is not None


REDO = -1
"""``Resume.order`` of a refresh to reconcile again."""


@dataclass(frozen=True, slots=True)
class Freshness:
    """The API's data version and clock, read once per tick for every watch."""

    refresh: str
    at: datetime

    @classmethod
    def of(cls, ready: date | None, generated_at: datetime | None, fallback: datetime) -> Freshness:
        return cls(ready.isoformat() if ready else "", generated_at or fallback)


@dataclass(frozen=True, slots=True)
class Fetch:
    """Read one list page (1 credit per row returned); answered with a ``Page``."""

    params: Params
    shop_id: str | None = None


@dataclass(frozen=True, slots=True)
class Count:
    """Count a scope with a page past its end (0 credits); answered with the total."""

    params: Params
    shop_id: str | None = None


@dataclass(frozen=True, slots=True)
class Lookup:
    """Read one item by id (1 credit); answered with the ``Item`` or ``NotFound``."""

    item_id: str


Request = Fetch | Count | Lookup


@dataclass(frozen=True, slots=True)
class Done:
    """The poll is complete: what to record (its outcome, detection and progress)."""

    outcome: Outcome
    detection: Detection
    resume: Resume
