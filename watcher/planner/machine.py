"""PURE: one poll of one watch as a conversation, sans I/O (in the style of h11).

``Planner`` holds a watch's progress for one poll. ``next_request()`` says what to ask the
API next (a ``Fetch``, ``Count`` or ``Lookup``) or that the poll is ``Done``, with what to
record; ``absorb(answer)`` hands it the answer (a ``Page``, a count, an ``Item``, or the
``ApiError`` the request raised). The poller only executes requests; every decision
(paging, caps, the fallback scan, resuming, follow-ups, the tracked set) is made here.

The strategy itself is described in ``watcher.plan``. Internally the conversation is a
generator: each ``yield`` is a request, and what it evaluates to is the answer, so the
steps read top to bottom like the I/O code they replace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from datetime import datetime
from typing import TypeAlias, TypeVar

from watcher import plan
from watcher.config import Watch
from watcher.detect import FirstRun, Observation, WatchState, baseline, detect
from watcher.errors import ApiError, NotFound, ValidationFailed
from watcher.models import Item
from watcher.planner.newest import Capped, NewestOrder
from watcher.planner.steps import (
    REDO,
    Count,
    Done,
    Fetch,
    Freshness,
    Lookup,
    Outcome,
    Request,
    Resume,
)
from watcher.trendtrack.models import Page

UPDATED_AFTER = "updatedAfter"

Answer: TypeAlias = "Page | int | Item"
"""A ``Page`` for a ``Fetch``, a total for a ``Count``, an ``Item`` for a ``Lookup``."""
Steps: TypeAlias = "Generator[Request, Answer, Done]"
_T = TypeVar("_T", int, Item)


def _expect(answer: Answer, kind: type[_T]) -> _T:
    """The answer, checked to be what the request asked for (a poller bug otherwise)."""
    if not isinstance(answer, kind) or (kind is int and isinstance(answer, bool)):
        raise TypeError(f"expected a {kind.__name__} answer, got {type(answer).__name__}")
    return answer


def _one_per_id(rows: list[Item]) -> list[Item]:
    """One row per item id, in first-seen order: a page listing an id twice with
    conflicting states keeps its latest ``updatedAt`` (the first of equals), so one poll
    never reports an item pinned and unpinned at once."""
    chosen: dict[str, Item] = {}
    for item in rows:
        kept = chosen.get(item.id)
        if kept is None or _newer(item, kept):
            chosen[item.id] = item
    if len(chosen) == len(rows):
        return rows
    return [chosen[i] for i in dict.fromkeys(item.id for item in rows)]


def _newer(item: Item, than: Item) -> bool:
    if item.updated_at is None:
        return False
    return than.updated_at is None or item.updated_at > than.updated_at


def _expect_page(answer: Answer) -> Page:
    if isinstance(answer, int | Item):
        raise TypeError(f"expected a page, got {type(answer).__name__}")
    return answer


def skips(has_baseline: bool, refresh: str | None, resume: Resume, fresh: Freshness) -> bool:
    """The refresh gate: nothing can have changed since the watch's last complete poll."""
    return has_baseline and refresh == fresh.refresh and not resume.pending


class Planner:
    """The requests of one poll of ``watch``, and what it found.

    ``updated_after`` is what is known of the API's ``updatedAfter`` (``None``: not yet
    learned; the planner then asks with a free count first). What it learns is readable
    in ``updated_after`` after every answer; ``credits`` is what the poll spent so far.
    ``now`` is the local time of the poll, which events carry.
    """

    def __init__(
        self,
        watch: Watch,
        state: WatchState,
        resume: Resume,
        fresh: Freshness,
        *,
        updated_after: bool | None,
        now: datetime,
    ) -> None:
        self.watch = watch
        self.state = state
        self.fresh = fresh
        self.now = now
        self.updated_after = updated_after
        self.credits = 0
        if resume.pending and state.refresh != fresh.refresh:
            # A refresh landed mid-feed: rows already read may have moved (to the end of
            # the ascending feed, to the top of the descending scan) and changed again.
            # Start over from the same watermark: some rows are read twice, none missed.
            # A baseline read of the stored order goes on: the next refresh's reconcile
            # repairs what moved meanwhile.
            keep = resume.order is not None and resume.order >= 0
            resume = Resume(order=resume.order) if keep else Resume()
        self.resume = resume
        self._steps = self._baseline() if not state.has_baseline else self._incremental()
        self._next: Request | Done = self._advance(None)

    # --- the conversation ------------------------------------------------------------------

    def next_request(self) -> Request | Done:
        """What the poll needs next, or ``Done`` with what to record."""
        return self._next

    @property
    def finished(self) -> bool:
        return isinstance(self._next, Done)

    def absorb(self, answer: Answer | ApiError) -> None:
        """The answer to ``next_request()``; an ``ApiError`` the planner can't use is
        raised from here (the poll fails)."""
        if self.finished:
            raise RuntimeError("the poll is done; nothing to absorb")
        self._next = self._advance(answer)

    def _advance(self, answer: Answer | ApiError | None) -> Request | Done:
        try:
            if isinstance(answer, ApiError):
                return self._steps.throw(answer)
            if answer is None:
                return next(self._steps)
            return self._steps.send(answer)
        except StopIteration as stop:
            done: Done = stop.value
            return done

    def _page(self, page: Page) -> Page:
        # Rows returned, not the X-Credits-Used header: a server claiming 0 credits for
        # full pages must still meet max_credits_per_poll (the API bills per row anyway).
        self.credits += len(page.items) + page.skipped
        return page

    def _stamp(self, item: Item) -> datetime | None:
        """``updatedAt`` if it is not past the API's own clock: a row from the future
        (``9999-…``) must never move a watermark, or nothing would be seen again."""
        stamp = item.updated_at
        return stamp if stamp is not None and stamp <= self.fresh.at else None

    def _fetch(
        self, scope: plan.Scope, params: plan.Params | None = None
    ) -> Generator[Request, Answer, Page]:
        answer = yield Fetch(params if params is not None else scope.params, scope.shop_id)
        return self._page(_expect_page(answer))

    def _count(self, scope: plan.Scope, params: plan.Params) -> Generator[Request, Answer, int]:
        answer = yield Count(params, scope.shop_id)
        return _expect(answer, int)

    def _observation(self, **fields: object) -> Observation:
        for name in ("changed", "rechecked", "tracked"):
            rows = fields.get(name)
            if isinstance(rows, list):
                fields[name] = _one_per_id(rows)
        return Observation(
            at=self.fresh.at,
            refresh=self.fresh.refresh,
            detected_at=self.now,
            **fields,  # type: ignore[arg-type]
        )

    # --- capabilities ----------------------------------------------------------------------

    def _supports_updated_after(self, scope: plan.Scope) -> Generator[Request, Answer, bool]:
        """Learn once, for free, whether the API accepts ``updatedAfter``."""
        if self.updated_after is None:
            try:
                yield from self._count(scope, scope.with_(updated_after=self.now))
            except ValidationFailed as exc:
                if not exc.rejects(UPDATED_AFTER):
                    raise
                self.updated_after = False
            else:
                self.updated_after = True
        return self.updated_after

    # --- the first run ---------------------------------------------------------------------

    def _baseline(self) -> Steps:
        """The first run: the watermark (1 row), plus what the first-run mode needs.

        Without exact ``updatedAt`` (the fallback), status changes of items never seen
        can't be told from metric updates, so the baseline reads the whole scope instead,
        over several polls if ``max_credits_per_poll`` cuts it.
        """
        watch = self.watch
        mode = plan.first_run_mode(watch)
        scope = plan.feed_scope(watch)
        exact = yield from self._supports_updated_after(scope)
        rows: list[Item] = []
        after = Resume()
        baseline_at: datetime | None = None
        listed: frozenset[str] = frozenset()
        if not exact and plan.needs_feed(watch):
            # Without updatedAfter, the scope is read once in newest order (the stored
            # order of the documented-only strategy), over several polls if capped.
            reads = self._order()
            goes_on = yield from reads.read_all(0)
            rows.extend(reads.out.rows.values())
            listed = frozenset(reads.out.listed)
            watermark = max((s for s in map(self._stamp, rows) if s), default=None)
            baseline_at = watermark or self.fresh.at
            after = Resume(order=goes_on) if goes_on is not None else Resume()
        elif plan.needs_feed(watch):
            read_all = mode == FirstRun.NOTIFY_ALL
            limit = plan.feed_limit(watch) if read_all else 1
            newest = scope.with_(sort_by="updatedAt", order="desc", page=1, limit=limit)
            while True:
                result = yield from self._fetch(scope, newest)
                rows.extend(result.items)
                cap = watch.max_credits_per_poll
                if not read_all or not result.has_more or self.credits + limit > cap:
                    break
                newest = newest.with_page((newest.page or 1) + 1, limit)
            watermark = max((s for s in map(self._stamp, rows) if s), default=None)
        else:
            # A rank-only watch has no feed: a feed row would cost a credit and leave a
            # rank from outside the tracked set, compared when the item joins it later.
            watermark = None
        tracked = (yield from self._tracked()) if plan.needs_tracked(watch) else None
        summary = (yield from self._summary(scope)) if mode == FirstRun.SUMMARY else None
        obs = self._observation(
            changed=rows, tracked=tracked, watermark=watermark, exact=exact, listed=listed
        )
        rules = plan.rules_for(watch)
        found = baseline(rules, self.state, obs, mode, summary=summary, baseline_at=baseline_at)
        return Done(Outcome.CAPPED if after.pending else Outcome.BASELINE, found, after)

    def _summary(self, scope: plan.Scope) -> Generator[Request, Answer, dict[str, object]]:
        """Free counts for the ``summary`` first run (pages past the end cost 0)."""
        total = yield from self._count(scope, scope.params)
        active = yield from self._count(scope, scope.with_(status="active", type="ad"))
        figures: dict[str, object] = {"items": total, "active_ads": active}
        with contextlib.suppress(ValidationFailed):  # no `pinned` filter: no figure
            figures["pinned"] = yield from self._count(scope, scope.with_(pinned="yes"))
        return figures

    # --- every later run -------------------------------------------------------------------

    def _incremental(self) -> Steps:
        watch = self.watch
        state = self.state
        changed: list[Item] = []
        watermark = state.watermark
        after = Resume()
        exact = False
        listed: frozenset[str] = frozenset()
        delisted: frozenset[str] = frozenset()
        if plan.needs_feed(watch):
            scope = plan.feed_scope(watch)
            exact = yield from self._supports_updated_after(scope)
            if exact:
                try:
                    watermark, after = yield from self._feed(changed)
                except ValidationFailed as exc:
                    if not exc.rejects(UPDATED_AFTER):
                        raise
                    self.updated_after = False
                    exact = False
            if not exact:
                order = yield from self._documented(changed)
                if order is None:
                    watermark, after = yield from self._fallback_feed(self.resume, changed)
                    exact = True  # a scan reads a change feed (state.moves is False)
                else:
                    after, listed, delisted = order
                    stamps = [s for s in map(self._stamp, changed) if s is not None]
                    watermark = max([*stamps, *([watermark] if watermark else [])], default=None)
        tracked: list[Item] | None = None
        rechecked: list[Item] = []
        gone: list[str] = []
        if not after.pending:
            if plan.needs_tracked(watch):
                tracked = yield from self._tracked()
            yield from self._recheck(changed, rechecked, gone)
        obs = self._observation(
            changed=changed,
            rechecked=rechecked,
            gone=gone,
            tracked=tracked,
            watermark=watermark,
            exact=exact,
            listed=listed,
            delisted=delisted,
        )
        found = detect(plan.rules_for(watch), state, obs)
        return Done(Outcome.CAPPED if after.pending else Outcome.OK, found, after)

    # --- the documented-only strategy: the stored newest order -----------------------------

    def _order(self) -> NewestOrder:
        def spend(credits: int) -> None:
            self.credits += credits

        def budget() -> int:
            return self.watch.max_credits_per_poll - self.credits

        return NewestOrder(self.watch, self.state, spend, budget, self.fresh.at)

    def _documented(
        self, changed: list[Item]
    ) -> Generator[Request, Answer, tuple[Resume, frozenset[str], frozenset[str]] | None]:
        """Without ``updatedAfter``: the ``updatedAt`` scan where ``updatedAt`` proved
        exact for this scope (returns None), else the stored order: its baseline read
        going on, or a refresh reconciled against it. Returns what to resume, the ids
        found in the order and those found gone from it."""
        state = self.state
        resume = self.resume
        reads = self._order()
        if resume.order is not None and resume.order >= 0:
            goes_on = yield from reads.read_all(resume.order)
            after = Resume(order=goes_on) if goes_on is not None else Resume()
        elif state.moves is False and state.watermark is not None:
            return None
        elif not any(s.listed for s in state.items.values()):
            goes_on = yield from reads.read_all(0)
            after = Resume(order=goes_on) if goes_on is not None else Resume()
        else:
            try:
                yield from reads.refresh()
            except Capped:
                changed.extend(reads.out.rows.values())
                return Resume(order=REDO), frozenset(reads.out.listed), frozenset()
            after = Resume()
        changed.extend(reads.out.rows.values())
        return after, frozenset(reads.out.listed), frozenset(reads.out.delisted)

    def _feed(
        self, changed: list[Item]
    ) -> Generator[Request, Answer, tuple[datetime | None, Resume]]:
        """Changes since the watermark, oldest first; returns (watermark, where to resume)."""
        watch, state = self.watch, self.state
        scope = plan.feed_scope(watch)
        limit = plan.feed_limit(watch)
        page = self.resume.page or 1
        params = scope.with_(
            sort_by="updatedAt",
            order="asc",
            updated_after=state.watermark,
            page=page,
            limit=limit,
        )
        while True:
            if self.credits + limit > watch.max_credits_per_poll:
                return state.watermark, Resume(page=page)
            result = yield from self._fetch(scope, params)
            changed.extend(result.items)
            if not result.has_more:
                break
            page += 1
            params = params.with_page(page, limit)
        stamps = [s for s in map(self._stamp, changed) if s is not None]
        marks = [*stamps, *([state.watermark] if state.watermark else [])]
        return max(marks, default=None), Resume()

    def _fallback_feed(
        self, resume: Resume, changed: list[Item]
    ) -> Generator[Request, Answer, tuple[datetime | None, Resume]]:
        """Without ``updatedAfter``: read ``updatedAt`` descending down to the watermark.

        A scan cut by ``max_credits_per_poll`` goes on at the next poll from the row it
        stopped at (restarted if a refresh landed in between); the watermark moves to the
        scan's first row once it completes.
        """
        watch = self.watch
        scope = plan.feed_scope(watch)
        base = scope.with_(sort_by="updatedAt", order="desc", page=1, limit=1)
        floor = self.state.watermark
        offset = resume.offset or 0
        mark = resume.mark if resume.offset else None
        done = False
        while not done:
            budget = watch.max_credits_per_poll - self.credits
            page, limit = plan.aligned_page(offset, budget)
            if offset and budget < 1:
                return floor, Resume(offset=offset, mark=mark)
            result = yield from self._fetch(scope, base.with_page(page, limit))
            if mark is None:  # the scan's first sane row (rows sort newest change first)
                mark = next((s for s in map(self._stamp, result.items) if s), None)
            for item in result.items:
                if floor is not None and item.updated_at is not None and item.updated_at <= floor:
                    done = True
                    break
                changed.append(item)
            offset += limit
            done = done or not result.has_more
        marks = [m for m in (mark, floor) if m is not None]
        return max(marks, default=None), Resume()

    def _tracked(self) -> Generator[Request, Answer, list[Item]]:
        scope = plan.tracked_scope(self.watch)
        result = yield from self._fetch(scope)
        return list(result.items)

    def _recheck(
        self, changed: list[Item], rechecked: list[Item], gone: list[str]
    ) -> Generator[Request, Answer, None]:
        """Re-read new items followed under a metric filter (1 credit each)."""
        seen_now = {i.id for i in changed}
        at = self.fresh.at
        followed = sorted(
            (
                s
                for s in self.state.items.values()
                if not s.announced
                and s.follow_until is not None
                and s.follow_until >= at
                and s.item_id not in seen_now
            ),
            key=lambda s: s.first_seen,
            reverse=True,
        )
        for seen in followed:
            if self.credits + 1 > self.watch.max_credits_per_poll:
                break
            try:
                answer = yield Lookup(seen.item_id)
            except NotFound:
                gone.append(seen.item_id)
                continue
            self.credits += 1
            rechecked.append(_expect(answer, Item))
