"""One poll of one watch: the loop that carries out the planner's requests.

The strategy (what to ask, when to stop, what was found) is the planner's
(``watcher.planner``, pure); this module executes its requests against a
``TrendTrackClient``, hands the answers back, and stores what the poll found in one
transaction. A poll that raises leaves nothing stored but its failure record, so it can
simply run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from watcher import plan
from watcher.config import Watch
from watcher.errors import ApiError
from watcher.models import Event
from watcher.planner import (
    Answer,
    Count,
    Done,
    Fetch,
    Freshness,
    Lookup,
    Outcome,
    Planner,
    Request,
    skips,
)
from watcher.store import AsyncStore, PollRecord, Routes, Store
from watcher.trendtrack.client import TrendTrackClient

logger = logging.getLogger("watcher.poll")

CAPABILITY_KEY = plan.UPDATED_AFTER_KEY

__all__ = ["CAPABILITY_KEY", "Capabilities", "Freshness", "PollOutcome", "Poller"]


@dataclass
class Capabilities:
    """What the API accepted of the contract's [chosen] features (learned, then kept)."""

    updated_after: bool | None = None


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """How one poll went, with what it found and spent."""

    watch: str
    outcome: Outcome
    events: tuple[Event, ...] = ()
    credits: int = 0
    items: int = 0
    duration_ms: int = 0
    error: ApiError | None = None


class Poller:
    """Polls watches through one shared client and store."""

    def __init__(
        self,
        client: TrendTrackClient,
        store: Store | AsyncStore,
        capabilities: Capabilities | None = None,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = AsyncStore.of(store)
        self.caps = capabilities or Capabilities()
        self._wall = wall
        self._monotonic = monotonic

    async def poll(
        self, watch: Watch, fresh: Freshness, routes: Routes, *, dry_run: bool = False
    ) -> PollOutcome:
        """Poll ``watch`` once; store the result unless ``dry_run``. Never raises ApiError.

        Detection runs on the API's clock (``fresh.at``); the poll record on the local one.
        """
        started = self._monotonic()
        started_at = self._wall()
        has_baseline, refresh, resume = await self.store.memory.progress(watch.name)
        if skips(has_baseline, refresh, resume, fresh):
            return PollOutcome(watch.name, Outcome.SKIPPED)  # one small read: most polls end here
        state = await self.store.memory.load(watch.name)
        if self.caps.updated_after is None:
            known = await self.store.meta.get(CAPABILITY_KEY)
            if known is not None:
                self.caps.updated_after = known == "1"
        planner = Planner(
            watch, state, resume, fresh, updated_after=self.caps.updated_after, now=started_at
        )
        try:
            done = await self._run(planner)
        except ApiError as exc:
            duration = int((self._monotonic() - started) * 1000)
            if not dry_run:
                record = PollRecord.failed(
                    watch.name,
                    started_at,
                    exc,
                    duration_ms=duration,
                    credits=planner.credits,
                    remaining=self.client.meter.balance,
                    fingerprint=watch.fingerprint,
                )
                await self.store.apply_poll(record, routes)
            return PollOutcome(watch.name, Outcome.FAILED, (), planner.credits, 0, duration, exc)
        duration = int((self._monotonic() - started) * 1000)
        if done.outcome is Outcome.CAPPED:
            logger.warning(
                "%s: max_credits_per_poll reached; the feed goes on at the next poll", watch.name
            )
        detection = done.detection
        events = detection.events
        if not dry_run:
            record = PollRecord(
                watch.name,
                started_at,
                duration,
                done.outcome,
                credits=planner.credits,
                remaining=self.client.meter.balance,
                fingerprint=watch.fingerprint,
                detection=detection,
                resume=done.resume,
            )
            applied = await self.store.apply_poll(record, routes)
            events = applied.new_events
        return PollOutcome(
            watch.name, done.outcome, events, planner.credits, len(detection.touched), duration
        )

    async def _run(self, planner: Planner) -> Done:
        """Carry out the planner's requests until it is done."""
        request = planner.next_request()
        while not isinstance(request, Done):
            try:
                answer: Answer | ApiError = await self._execute(request)
            except ApiError as exc:
                answer = exc  # the planner decides: fall back, skip, or fail the poll
            try:
                planner.absorb(answer)
            finally:
                await self._learn(planner.updated_after)
            request = planner.next_request()
        return request

    async def _execute(self, request: Request) -> Answer:
        client = self.client
        if isinstance(request, Fetch):
            return await client.fetch(request.params, shop_id=request.shop_id)
        if isinstance(request, Count):
            return await client.count(request.params, shop_id=request.shop_id)
        if isinstance(request, Lookup):
            return await client.get_item(request.item_id)
        raise TypeError(f"unknown request {request!r}")

    async def _learn(self, supported: bool | None) -> None:
        """Keep what the planner learned of ``updatedAfter`` (once, for every watch)."""
        if supported is None or supported == self.caps.updated_after:
            return
        self.caps.updated_after = supported
        await self.store.meta.set(CAPABILITY_KEY, "1" if supported else "0")
        if not supported:
            logger.warning("the API rejects updatedAfter: falling back to sortBy=updatedAt")
