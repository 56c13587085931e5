"""Runs polls for a process (``watcher once`` and the daemon alike): the refresh gate,
the budget guard, pauses on 401/402, and the ops events of the daemon's own health.

Every ops event fires once per *episode* (opened on the first failure, closed on
recovery), never once per poll; episodes live in the database so a restart doesn't
repeat them.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from watcher import plan
from watcher.config import Settings, Watch
from watcher.errors import ApiError, AuthError, InsufficientCredits, PollCrashed, StoreError
from watcher.models import EventKind, OpsEvent, ops_event
from watcher.planner import Freshness, Outcome
from watcher.poller import Capabilities, Poller, PollOutcome
from watcher.schedule import FRESHNESS_TTL
from watcher.store import AsyncStore, PollRecord, Routes, Store
from watcher.trendtrack.client import TrendTrackClient

logger = logging.getLogger("watcher.run")

EPISODES_TTL = timedelta(minutes=1)
API = "api"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Pause:
    """Why polling is paused: ``auth`` until the config changes, ``credits`` until refilled."""

    reason: str
    since: datetime


def routes_for(settings: Settings, watch: Watch) -> Routes:
    """Where each event kind of a watch goes: its ``notify`` list plus ``route`` extras."""
    out: dict[EventKind, list[tuple[str, int]]] = {}
    for kind in EventKind:
        if kind.is_ops:
            continue
        names = list(watch.notify)
        names += [n for n in settings.route.get(kind, ()) if n not in names]
        out[kind] = [(n, len(settings.notifiers[n].urls)) for n in names if n in settings.notifiers]
    return out


def ops_routes(settings: Settings) -> Routes:
    """Ops events go to ``ops_notify`` only (plus any ``route`` extras for that kind)."""
    out: dict[EventKind, list[tuple[str, int]]] = {}
    for kind in EventKind:
        if not kind.is_ops:
            continue
        names = list(settings.ops_notify)
        names += [n for n in settings.route.get(kind, ()) if n not in names]
        out[kind] = [(n, len(settings.notifiers[n].urls)) for n in names if n in settings.notifiers]
    return out


class Runner:
    """Polls watches with one shared client, store and view of the API's freshness."""

    def __init__(
        self,
        settings: Settings,
        store: Store | AsyncStore,
        client: TrendTrackClient,
        *,
        clock: Callable[[], datetime] = utcnow,
        capabilities: Capabilities | None = None,
        freshness_ttl: timedelta = FRESHNESS_TTL,
    ) -> None:
        self.settings = settings
        self.store = AsyncStore.of(store)
        self.client = client
        self.clock = clock
        self.freshness_ttl = freshness_ttl
        self.poller = Poller(client, self.store, capabilities, wall=clock)
        self.pause: Pause | None = None
        self._fresh: tuple[datetime, Freshness] | None = None
        self._failures: dict[str, int] = {}
        """Each failing watch's latest count of failed polls in a row, for its recovery."""
        self._fresh_lock = asyncio.Lock()
        self._episode_cache: tuple[datetime, set[tuple[str, str]]] | None = None

    # --- shared reads ----------------------------------------------------------------------

    async def freshness(self) -> Freshness:
        """The API's latest data version, read at most once per ``freshness_ttl`` (free)."""
        async with self._fresh_lock:
            now = self.clock()
            if self._fresh is not None and now - self._fresh[0] < self.freshness_ttl:
                return self._fresh[1]
            reply = await self.client.freshness()
            fresh = Freshness.of(reply.latest_ready_date, reply.generated_at, now)
            self._fresh = (now, fresh)
            return fresh

    def forget_freshness(self) -> None:
        self._fresh = None

    # --- one poll --------------------------------------------------------------------------

    async def poll(self, watch: Watch, *, dry_run: bool = False) -> PollOutcome:
        """Poll one watch with every guard around it; never raises ApiError."""
        if self.pause is not None:
            return _log_poll(PollOutcome(watch.name, Outcome.PAUSED))
        if not dry_run and await self._shed(watch):
            return _log_poll(PollOutcome(watch.name, Outcome.SHED))
        try:
            fresh = await self.freshness()
            routes = routes_for(self.settings, watch)
            outcome = await self.poller.poll(watch, fresh, routes, dry_run=dry_run)
        except ApiError as exc:
            outcome = PollOutcome(watch.name, Outcome.FAILED, error=exc)
            if not dry_run:  # stored, so consecutive failures count it
                await self.record_failure(watch, exc)
        except StoreError:
            raise  # the store can't count its own failure; the daemon's boundary logs it
        except Exception as exc:  # noqa: BLE001  # the per-watch boundary: a poll that crashes counts as failed
            crash = PollCrashed(f"poll crashed: {type(exc).__name__}: {str(exc)[:200]}")
            logger.warning("poll watch=%s crashed: %s", watch.name, crash)
            outcome = PollOutcome(watch.name, Outcome.FAILED, error=crash)
            if not dry_run:
                await self.record_failure(watch, crash)
        if not dry_run:
            await self._after(watch, outcome)
        return _log_poll(outcome)

    async def record_failure(self, watch: Watch, error: ApiError) -> None:
        """Store a failed poll of ``watch`` (consecutive failures count it)."""
        record = PollRecord.failed(
            watch.name,
            self.clock(),
            error,
            remaining=self.client.meter.balance,
            fingerprint=watch.fingerprint,
        )
        await self.store.apply_poll(record, routes_for(self.settings, watch))

    async def _after(self, watch: Watch, outcome: PollOutcome) -> None:
        """Ops bookkeeping after a poll: failing/recovered, auth, credits."""
        error = outcome.error
        if isinstance(error, AuthError):
            self.pause = Pause("auth", self.clock())
            await self._open(EventKind.AUTH_REJECTED, API, error=str(error))
            return
        if isinstance(error, InsufficientCredits):
            self.pause = Pause("credits", self.clock())
            await self._open(EventKind.CREDITS_EXHAUSTED, API, balance=0, error=str(error))
            return
        if outcome.outcome.failure:
            failures = await self.store.memory.consecutive_failures(watch.name)
            self._failures[watch.name] = failures
            if failures >= self.settings.ops.failing_after:
                await self._open(
                    EventKind.WATCH_FAILING,
                    watch.name,
                    failures=failures,
                    error=str(error) if error else "unknown error",
                )
            return
        if outcome.outcome.healthy:
            recovered_after = self._failures.pop(watch.name, None)
            await self._close(
                EventKind.WATCH_FAILING,
                watch.name,
                EventKind.WATCH_RECOVERED,
                **({"failures": recovered_after} if recovered_after is not None else {}),
            )
            await self._close(EventKind.AUTH_REJECTED, API)
            await self._close(EventKind.CREDITS_EXHAUSTED, API)
        await self._check_balance()

    async def _check_balance(self) -> None:
        balance = self.client.meter.balance
        if balance is None:
            return
        low = self.settings.ops.credits_low_below
        if balance < low:
            await self._open(EventKind.CREDITS_LOW, API, balance=balance, threshold=low)
        else:
            await self._close(EventKind.CREDITS_LOW, API)

    async def resume_if_possible(self, *, config_changed: bool = False) -> bool:
        """Lift a pause: ``auth`` when the config changed, ``credits`` when the free
        ``/v1/usage`` shows a positive balance again. True if polling may go on."""
        if self.pause is None:
            return True
        if self.pause.reason == "auth" and config_changed:
            self.pause = None
        elif self.pause.reason == "credits":
            try:
                usage = await self.client.usage()
            except ApiError as exc:
                logger.info("still paused: cannot read the credit balance (%s)", exc)
                return False
            balance = usage.total_remaining if usage.total_remaining is not None else usage.balance
            if balance is not None and balance > 0:
                logger.info("credit balance is %d again: polling resumes", balance)
                self.pause = None
                await self._close(EventKind.CREDITS_EXHAUSTED, API)
        return self.pause is None

    # --- the budget guard ----------------------------------------------------------------

    async def _shed(self, watch: Watch) -> bool:
        """Skip low-priority polls while this month's forecast exceeds the budget."""
        budget = self.settings.budget.monthly_credits
        if budget is None or watch.priority != "low":
            return False
        now = self.clock().astimezone(self.settings.timezone)
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        spent = await self.store.ledger.spent(since=start.astimezone(UTC))
        days = calendar.monthrange(now.year, now.month)[1]
        forecast = plan.month_forecast(spent, now, start, days)
        if forecast <= budget:
            await self._close(EventKind.BUDGET_EXCEEDED, API)
            return False
        await self._open(
            EventKind.BUDGET_EXCEEDED,
            API,
            forecast=round(forecast),
            budget=budget,
            spent=spent,
        )
        return True

    # --- ops events ----------------------------------------------------------------------

    async def _open(self, kind: EventKind, subject: str, **figures: object) -> None:
        now = self.clock()
        opened = await self.store.episodes.open(kind, subject, now)
        (await self._episodes()).add((kind.value, subject))
        if opened:
            await self.record_ops(ops_event(kind, subject, now, figures))

    async def _close(
        self, kind: EventKind, subject: str, announce: EventKind | None = None, **figures: object
    ) -> None:
        episodes = await self._episodes()
        if (kind.value, subject) not in episodes:
            return  # nothing open: no write (every healthy poll comes here)
        episodes.discard((kind.value, subject))
        closed = await self.store.episodes.close(kind, subject)
        if closed and announce is not None:
            await self.record_ops(ops_event(announce, subject, self.clock(), figures))

    async def _episodes(self) -> set[tuple[str, str]]:
        """Open episodes, read from the database at most once per ``EPISODES_TTL`` (other
        processes, such as ``watcher once``, may open some too)."""
        now = self.clock()
        if self._episode_cache is None or now - self._episode_cache[0] >= EPISODES_TTL:
            episodes = await self.store.episodes.opened()
            self._episode_cache = (now, episodes)
        return self._episode_cache[1]

    async def record_ops(self, event: OpsEvent) -> None:
        """Record an ops event in the outbox, routed to ``ops_notify``."""
        logger.warning("ops: %s %s %s", event.kind.value, event.watch, event.figures or "")
        await self.store.outbox.record(event, ops_routes(self.settings))


def _log_poll(outcome: PollOutcome) -> PollOutcome:
    """One log line per poll with its figures as fields: WARNING for a failure, INFO for
    a poll that read something (a new refresh), DEBUG for the rest: a free poll finding no
    new refresh, a paused or shed one, says nothing worth a line (the daemon logs a
    periodic summary instead)."""
    idle = outcome.outcome in {Outcome.SKIPPED, Outcome.PAUSED, Outcome.SHED}
    if outcome.outcome.failure:
        level = logging.WARNING
    elif idle and not (outcome.items or outcome.events or outcome.credits):
        level = logging.DEBUG
    else:
        level = logging.INFO
    logger.log(
        level,
        "poll watch=%s outcome=%s items=%d events=%d credits=%d duration_ms=%d%s",
        outcome.watch,
        outcome.outcome.value,
        outcome.items,
        len(outcome.events),
        outcome.credits,
        outcome.duration_ms,
        f" error={outcome.error}" if outcome.error else "",
        extra={
            "watch": outcome.watch,
            "outcome": outcome.outcome.value,
            "items": outcome.items,
            "events": len(outcome.events),
            "credits": outcome.credits,
            "duration_ms": outcome.duration_ms,
            **({"error": str(outcome.error)} if outcome.error else {}),
        },
    )
    return outcome
