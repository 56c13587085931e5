"""One poll of one watch: plan -> API reads -> detection -> one stored transaction.

The strategy is described in ``watcher.plan``; this module performs it against a
``TrendTrackClient`` and a ``Store``. A poll that raises leaves nothing stored but its
failure record, so it can simply run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from watcher import plan
from watcher.config import Watch
from watcher.detect import Detection, FirstRun, Observation, WatchState, baseline, detect
from watcher.errors import ApiError, NotFound, ValidationFailed
from watcher.models import Event, Item
from watcher.store import PollRecord, Resume, Routes, Store
from watcher.trendtrack import Page
from watcher.trendtrack.client import TrendTrackClient

logger = logging.getLogger("watcher.poll")

UPDATED_AFTER = "updatedAfter"
CAPABILITY_KEY = "api.updated_after"


@dataclass
class Capabilities:
    """What the API accepted of the contract's [chosen] features (learned, then kept)."""

    updated_after: bool | None = None


@dataclass(frozen=True, slots=True)
class Freshness:
    """The API's data version and clock, read once per tick for every watch."""

    refresh: str
    at: datetime

    @classmethod
    def of(cls, ready: date | None, generated_at: datetime | None, fallback: datetime) -> Freshness:
        return cls(ready.isoformat() if ready else "", generated_at or fallback)


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """How one poll went: ``ok``, ``baseline``, ``skipped``, ``capped`` or ``failed``."""

    watch: str
    outcome: str
    events: tuple[Event, ...] = ()
    credits: int = 0
    items: int = 0
    duration_ms: int = 0
    error: ApiError | None = None


@dataclass
class _Spend:
    credits: int = 0

    def page(self, page: Page) -> Page:
        used = page.credits_used
        self.credits += used if used is not None else len(page.items) + page.skipped
        return page


class Poller:
    """Polls watches through one shared client and store."""

    def __init__(
        self,
        client: TrendTrackClient,
        store: Store,
        capabilities: Capabilities | None = None,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = store
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
        has_baseline, refresh, resume = await asyncio.to_thread(self.store.progress, watch.name)
        if has_baseline and refresh == fresh.refresh and not resume.pending:
            return PollOutcome(watch.name, "skipped")  # one small read: most polls end here
        state = await asyncio.to_thread(self.store.load_state, watch.name)
        if resume.pending and state.refresh != fresh.refresh:
            # A refresh landed mid-feed: rows already read may have moved (to the end of
            # the ascending feed, to the top of the descending scan) and changed again.
            # Start over from the same watermark: some rows are read twice, none missed.
            resume = Resume()
        spend = _Spend()
        try:
            if state.has_baseline:
                detection, resume = await self._incremental(watch, state, fresh, resume, spend)
                outcome = "capped" if resume.pending else "ok"
            else:
                detection, resume = await self._baseline(watch, state, fresh, spend)
                outcome = "capped" if resume.pending else "baseline"
        except ApiError as exc:
            duration = int((self._monotonic() - started) * 1000)
            if not dry_run:
                await asyncio.to_thread(
                    self.store.apply_poll,
                    PollRecord(
                        watch.name,
                        started_at,
                        duration,
                        "failed",
                        credits=spend.credits,
                        remaining=self.client.meter.balance,
                        error=str(exc),
                        fingerprint=watch.fingerprint,
                    ),
                    routes,
                )
            return PollOutcome(watch.name, "failed", (), spend.credits, 0, duration, exc)
        duration = int((self._monotonic() - started) * 1000)
        # Detection compares item timestamps on the API's clock; users read "detected at"
        # on their own, so the recorded events carry the local time of the poll.
        detection = replace(
            detection,
            events=tuple(replace(e, detected_at=started_at) for e in detection.events),
        )
        events = detection.events
        if not dry_run:
            applied = await asyncio.to_thread(
                self.store.apply_poll,
                PollRecord(
                    watch.name,
                    started_at,
                    duration,
                    outcome,
                    credits=spend.credits,
                    remaining=self.client.meter.balance,
                    fingerprint=watch.fingerprint,
                    detection=detection,
                    resume=resume,
                ),
                routes,
            )
            events = applied.new_events
        return PollOutcome(
            watch.name, outcome, events, spend.credits, len(detection.touched), duration
        )

    # --- the first run --------------------------------------------------------------------

    async def _baseline(
        self, watch: Watch, state: WatchState, fresh: Freshness, spend: _Spend
    ) -> tuple[Detection, Resume]:
        """The first run: the watermark (1 row), plus what the first-run mode needs.

        Without exact ``updatedAt`` (the fallback), status changes of items never seen
        can't be told from metric updates, so the baseline reads the whole scope instead,
        over several polls if ``max_credits_per_poll`` cuts it.
        """
        mode = plan.first_run_mode(watch)
        scope = plan.feed_scope(watch)
        exact = await self._updated_after_supported(scope)
        rows: list[Item] = []
        resume = Resume()
        baseline_at: datetime | None = None
        if not exact and plan.needs_feed(watch):
            watermark, resume = await self._fallback_feed(watch, state, resume, spend, rows)
            baseline_at = resume.mark
        elif plan.needs_feed(watch):
            read_all = mode == FirstRun.NOTIFY_ALL
            limit = plan.feed_limit(watch) if read_all else 1
            newest = scope.with_(sort_by="updatedAt", order="desc", page=1, limit=limit)
            while True:
                result = spend.page(await self.client.fetch(newest, shop_id=scope.shop_id))
                rows.extend(result.items)
                cap = watch.max_credits_per_poll
                if not read_all or not result.has_more or spend.credits + limit > cap:
                    break
                newest = newest.with_page((newest.page or 1) + 1, limit)
            watermark = max((i.updated_at for i in rows if i.updated_at), default=None)
        else:
            # A rank-only watch has no feed: a feed row would cost a credit and leave a
            # rank from outside the tracked set, compared when the item joins it later.
            watermark = None
        tracked = await self._tracked(watch, spend) if plan.needs_tracked(watch) else None
        summary = await self._summary(scope) if mode == FirstRun.SUMMARY else None
        obs = Observation(
            at=fresh.at,
            refresh=fresh.refresh,
            changed=rows,
            tracked=tracked,
            watermark=watermark,
            exact=exact,
        )
        rules = plan.rules_for(watch)
        found = baseline(rules, state, obs, mode, summary=summary, baseline_at=baseline_at)
        return found, resume

    async def _summary(self, scope: plan.Scope) -> dict[str, object]:
        """Free counts for the ``summary`` first run (pages past the end cost 0)."""
        total = await self.client.count(scope.params, shop_id=scope.shop_id)
        active = await self.client.count(
            scope.with_(status="active", type="ad"), shop_id=scope.shop_id
        )
        figures: dict[str, object] = {"items": total, "active_ads": active}
        # Without a `pinned` filter on this route the figure is left out.
        with contextlib.suppress(ValidationFailed):
            figures["pinned"] = await self.client.count(
                scope.with_(pinned="yes"), shop_id=scope.shop_id
            )
        return figures

    async def _updated_after_supported(self, scope: plan.Scope) -> bool:
        """Learn once, for free, whether the API accepts ``updatedAfter``."""
        if self.caps.updated_after is None:
            known = await asyncio.to_thread(self.store.get_meta, CAPABILITY_KEY)
            if known is not None:
                self.caps.updated_after = known == "1"
        if self.caps.updated_after is None:
            probe = scope.with_(updated_after=datetime.now().astimezone())
            try:
                await self.client.count(probe, shop_id=scope.shop_id)
            except ValidationFailed as exc:
                if not exc.rejects(UPDATED_AFTER):
                    raise
                await self._learn(supported=False)
            else:
                await self._learn(supported=True)
        return bool(self.caps.updated_after)

    async def _learn(self, *, supported: bool) -> None:
        self.caps.updated_after = supported
        await asyncio.to_thread(self.store.set_meta, CAPABILITY_KEY, "1" if supported else "0")
        if not supported:
            logger.warning("the API rejects updatedAfter: falling back to sortBy=updatedAt")

    # --- every later run -----------------------------------------------------------------

    async def _incremental(
        self,
        watch: Watch,
        state: WatchState,
        fresh: Freshness,
        resume: Resume,
        spend: _Spend,
    ) -> tuple[Detection, Resume]:
        changed: list[Item] = []
        watermark = state.watermark
        after = Resume()
        exact = False
        if plan.needs_feed(watch):
            scope = plan.feed_scope(watch)
            exact = await self._updated_after_supported(scope)
            if exact:
                try:
                    watermark, after = await self._feed(watch, state, resume, spend, changed)
                except ValidationFailed as exc:
                    if not exc.rejects(UPDATED_AFTER):
                        raise
                    await self._learn(supported=False)
                    exact = False
            if not exact:
                watermark, after = await self._fallback_feed(watch, state, resume, spend, changed)
        tracked: list[Item] | None = None
        rechecked: list[Item] = []
        gone: list[str] = []
        if not after.pending:
            if plan.needs_tracked(watch):
                tracked = await self._tracked(watch, spend)
            await self._recheck(watch, state, fresh, spend, changed, rechecked, gone)
        obs = Observation(
            at=fresh.at,
            refresh=fresh.refresh,
            changed=changed,
            rechecked=rechecked,
            gone=gone,
            tracked=tracked,
            watermark=watermark,
            exact=exact,
        )
        return detect(plan.rules_for(watch), state, obs), after

    async def _feed(
        self,
        watch: Watch,
        state: WatchState,
        resume: Resume,
        spend: _Spend,
        changed: list[Item],
    ) -> tuple[datetime | None, Resume]:
        """Changes since the watermark, oldest first; returns (watermark, where to resume)."""
        scope = plan.feed_scope(watch)
        limit = plan.feed_limit(watch)
        page = resume.page or 1
        params = scope.with_(
            sort_by="updatedAt",
            order="asc",
            updated_after=state.watermark,
            page=page,
            limit=limit,
        )
        while True:
            if spend.credits + limit > watch.max_credits_per_poll:
                logger.warning(
                    "%s: max_credits_per_poll reached; the feed resumes at page %d next poll",
                    watch.name,
                    page,
                )
                return state.watermark, Resume(page=page)
            result = spend.page(await self.client.fetch(params, shop_id=scope.shop_id))
            changed.extend(result.items)
            if not result.has_more:
                break
            page += 1
            params = params.with_page(page, limit)
        stamps = [i.updated_at for i in changed if i.updated_at is not None]
        marks = [*stamps, *([state.watermark] if state.watermark else [])]
        return max(marks, default=None), Resume()

    async def _fallback_feed(
        self,
        watch: Watch,
        state: WatchState,
        resume: Resume,
        spend: _Spend,
        changed: list[Item],
    ) -> tuple[datetime | None, Resume]:
        """Without ``updatedAfter``: read ``updatedAt`` descending down to the watermark.

        A scan cut by ``max_credits_per_poll`` goes on at the next poll from the row it
        stopped at (``poll`` restarts it if a refresh landed in between); the watermark
        moves to the scan's first row once it completes.
        """
        scope = plan.feed_scope(watch)
        base = scope.with_(sort_by="updatedAt", order="desc", page=1, limit=1)
        floor = state.watermark
        offset = resume.offset or 0
        mark = resume.mark if resume.offset else None
        done = False
        while not done:
            budget = watch.max_credits_per_poll - spend.credits
            page, limit = plan.aligned_page(offset, budget)
            if offset and budget < 1:
                logger.warning(
                    "%s: max_credits_per_poll reached; the fallback scan resumes at row %d",
                    watch.name,
                    offset,
                )
                return floor, Resume(offset=offset, mark=mark)
            result = spend.page(
                await self.client.fetch(base.with_page(page, limit), shop_id=scope.shop_id)
            )
            if offset == 0 and result.items:
                mark = result.items[0].updated_at
            for item in result.items:
                if floor is not None and item.updated_at is not None and item.updated_at <= floor:
                    done = True
                    break
                changed.append(item)
            offset += limit
            done = done or not result.has_more
        marks = [m for m in (mark, floor) if m is not None]
        return max(marks, default=None), Resume()

    async def _tracked(self, watch: Watch, spend: _Spend) -> list[Item]:
        scope = plan.tracked_scope(watch)
        result = spend.page(await self.client.fetch(scope.params, shop_id=scope.shop_id))
        return list(result.items)

    async def _recheck(
        self,
        watch: Watch,
        state: WatchState,
        fresh: Freshness,
        spend: _Spend,
        changed: list[Item],
        rechecked: list[Item],
        gone: list[str],
    ) -> None:
        """Re-read new items followed under a metric filter (1 credit each)."""
        seen_now = {i.id for i in changed}
        followed = sorted(
            (
                s
                for s in state.items.values()
                if not s.announced
                and s.follow_until is not None
                and s.follow_until >= fresh.at
                and s.item_id not in seen_now
            ),
            key=lambda s: s.first_seen,
            reverse=True,
        )
        for seen in followed:
            if spend.credits + 1 > watch.max_credits_per_poll:
                break
            try:
                item = await self.client.get_item(seen.item_id)
            except NotFound:
                gone.append(seen.item_id)
                continue
            spend.credits += 1
            rechecked.append(item)
