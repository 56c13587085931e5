"""PURE: the documented-only strategy's steps (the scope's stored ``newest`` order).

Without ``updatedAfter`` and with an ``updatedAt`` that moves on metric updates, no sort
returns "what changed". So a watch keeps its scope's rows in ``newest`` order (read once,
over several polls if the cap requires) and, at each refresh, reconciles three lists
against it (``watcher.planner.order``), each with a free count first:

1. the scope (every status): new and late-indexed items, removals, items coming back;
2. its active ads (``status=active&type=ad``): stops and resumes leave and join it;
3. its pinned items (``pinned: yes`` in a ``POST /query`` body), read whole when any.

A stored row found gone from a list is looked up by id (1 credit): stopped, unpinned or
removed. ``watcher.plan`` explains the design and its costs.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watcher import plan
from watcher.config import Watch
from watcher.detect import Seen, WatchState
from watcher.errors import NotFound
from watcher.models import Item, ItemStatus, ItemType
from watcher.planner.order import MAX_LIMIT, WINDOW, Found, Row, in_order, reconcile
from watcher.planner.steps import Count, Fetch, Lookup, Request
from watcher.trendtrack.models import Page

Steps = Generator[Request, object, None]
DEFAULT_LAG = timedelta(days=6)
"""The indexing lag assumed before any is seen."""
LAG_MARGIN = timedelta(hours=12)
VERIFY = 2
"""Levels of identity probes in the active-ads list even when its count did not move:
a stop and a resume in one refresh cancel in the count but shift the rows between them,
so ``2**VERIFY - 1`` probes catch such a pair unless both fall between two probes."""
DENSE_FROM = 64
"""Past this many active ads, one level more (4 to 8 ads between two probes)."""
MAX_VERIFY = 9


class Capped(Exception):  # a control-flow signal, not an error
    """The next read would pass ``max_credits_per_poll``."""


@dataclass
class Reads:
    """What one order poll read: rows (current state), which are in the scope's order,
    which left it."""

    rows: dict[str, Item] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    delisted: set[str] = field(default_factory=set)

    def add(self, items: Sequence[Item], *, listed: bool) -> None:
        for item in items:
            self.rows[item.id] = item
            if listed:
                self.listed.add(item.id)
                self.delisted.discard(item.id)


def verify_depth(rows: int) -> int:
    """Levels of identity probes for an active-ads list of ``rows``: ``VERIFY`` up to 32
    rows (8 to 16 ads between two probes), a level more per doubling past it, and past
    ``DENSE_FROM`` one more (4 to 8 between probes), at most ``MAX_VERIFY``. A list twice
    as long holds about twice the stops and twice the ads that may resume, so four times
    the pairs that may cancel: a long list's pair is likelier to fall between two probes,
    and the extra level halves that chance (on the large-scope workload 2 of 391 events
    were missed at 8 to 16 ads between probes, none at 4 to 8; the reference workload
    pays 1.9 % more credits)."""
    depth = VERIFY
    size = 32
    while rows > size:
        depth += 1
        size *= 2
    if rows > DENSE_FROM:
        depth += 1
    return min(depth, MAX_VERIFY)


def affordable_depth(budget: int) -> int:
    """The most levels of identity probes that cost at most half of what the poll may
    still spend. A capped refresh is redone from the start at the next poll (what it read
    is kept), so probes that alone pass ``max_credits_per_poll`` would cap every poll
    forever; bounded, they leave room for the bisections that make progress."""
    return max(0, (budget // 2 + 1).bit_length() - 1)


def stored_order(state: WatchState) -> list[Row]:
    """The watch's stored ``newest`` order: every listed item with a ``publishedAt``."""
    return in_order(
        [
            Row.of(s.item_id, s.published_at)
            for s in state.items.values()
            if s.listed and s.published_at is not None
        ]
    )


def _row(item: Item, fallback: Seen | None) -> Row | None:
    published = item.published_at or (fallback.published_at if fallback else None)
    return Row.of(item.id, published) if published is not None else None


class NewestOrder:
    """The order strategy for one poll; reads through the planner's paid requests."""

    def __init__(
        self,
        watch: Watch,
        state: WatchState,
        spend: Callable[[int], None],
        budget: Callable[[], int],
        fresh_at: datetime,
    ) -> None:
        self.fresh_at = fresh_at
        self.watch = watch
        self.state = state
        self.spend = spend
        self.budget = budget
        self.out = Reads()
        self.probes = 0

    # --- paid reads --------------------------------------------------------------------

    def _fetch(
        self, scope: plan.Scope, params: plan.Params, *, shop: str | None = None
    ) -> Generator[Request, object, Page]:
        """One page. A page past the budget is cut to what the budget still reads (from
        its first row, page-aligned), those rows kept, and the poll capped: the next poll
        goes on from a stored order that already holds them."""
        limit = params.limit or MAX_LIMIT
        budget = self.budget()
        cut = limit > budget
        if cut:
            if budget < 1:
                raise Capped
            start = ((params.page or 1) - 1) * limit
            smaller = 1 << (budget.bit_length() - 1)
            while start % smaller:
                smaller >>= 1
            params = params.with_page(start // smaller + 1, smaller)
        answer = yield Fetch(params, scope.shop_id)
        if not isinstance(answer, Page):
            raise TypeError(f"expected a page, got {type(answer).__name__}")
        self.spend(len(answer.items) + answer.skipped)
        if cut:
            self.out.add(
                [i for i in answer.items if shop is None or i.shop_id == shop], listed=True
            )
            raise Capped
        return answer

    def _count(self, scope: plan.Scope) -> Generator[Request, object, int]:
        answer = yield Count(scope.params, scope.shop_id)
        if not isinstance(answer, int) or isinstance(answer, bool):
            raise TypeError(f"expected a count, got {type(answer).__name__}")
        return answer

    def _lookup(self, item_id: str) -> Generator[Request, object, Item | None]:
        if self.budget() < 1:
            raise Capped
        try:
            answer = yield Lookup(item_id)
        except NotFound:
            return None
        if not isinstance(answer, Item):
            raise TypeError(f"expected an item, got {type(answer).__name__}")
        self.spend(1)
        return answer

    def _reader(
        self, scope: plan.Scope
    ) -> Callable[[int, int], Generator[Request, object, Sequence[Item]]]:
        def read(page: int, limit: int) -> Generator[Request, object, Sequence[Item]]:
            result = yield from self._fetch(scope, scope.params.with_page(page, limit))
            self.out.add(result.items, listed=True)  # kept even if the poll is capped later
            return result.items

        return read

    # --- the baseline: the whole order, once -------------------------------------------

    def read_all(self, start: int) -> Generator[Request, object, int | None]:
        """Read the scope in ``newest`` order from row ``start``; returns where the next
        poll goes on (None: the whole scope is read)."""
        scope = plan.order_scope(self.watch)
        limit = plan.feed_limit(self.watch)
        offset = start - start % limit
        while True:
            if offset + limit > WINDOW or limit > self.budget():
                if offset + limit > WINDOW:
                    return None  # the rest is past the result window (see the plan)
                return offset
            page = yield from self._fetch(scope, scope.params.with_page(offset // limit + 1, limit))
            self.out.add(page.items, listed=True)
            offset += limit
            if not page.has_more:
                return None

    # --- a refresh ---------------------------------------------------------------------

    def refresh(self) -> Steps:
        """Reconcile the scope, its active ads and its pinned items with the stored order."""
        state = self.state
        scope = plan.order_scope(self.watch)
        order = stored_order(state)
        total = yield from self._count(scope)
        horizon = self.fresh_at - (state.max_lag or DEFAULT_LAG) - LAG_MARGIN
        band = bisect.bisect_left(order, Row.of("", horizon))
        found = yield from reconcile(order, total, self._reader(scope), first=band)
        self._absorb(found, listed=True)
        gone = yield from self._confirm(found.missing)
        self.out.delisted |= gone
        current = self._current()
        active = plan.active_scope(self.watch)
        if active is not None:
            stored = in_order([r for r in current.values() if self._is_active_ad(r.id)])
            count = yield from self._count(active)
            depth = min(verify_depth(len(stored)), affordable_depth(self.budget()))
            found = yield from reconcile(stored, count, self._reader(active), verify=depth)
            self._absorb(found, listed=True)
            self.out.delisted |= yield from self._confirm(found.missing)
        yield from self._pins()

    def _absorb(self, found: Found, *, listed: bool) -> None:
        self.out.add(list(found.read.values()), listed=listed)
        self.probes += found.probes

    def _confirm(self, ids: Sequence[str]) -> Generator[Request, object, set[str]]:
        """Look up stored rows a list no longer holds: stopped, unpinned, or removed."""
        gone: set[str] = set()
        for item_id in ids:
            if item_id in self.out.rows:
                continue
            item = yield from self._lookup(item_id)
            if item is None:
                gone.add(item_id)
            else:
                self.out.add([item], listed=True)
        return gone

    def _current(self) -> dict[str, Row]:
        """The order as now known: stored rows not found gone, plus rows read."""
        rows: dict[str, Row] = {}
        for seen in self.state.items.values():
            if seen.listed and seen.published_at is not None:
                rows[seen.item_id] = Row.of(seen.item_id, seen.published_at)
        for item_id, item in self.out.rows.items():
            if item_id in self.out.listed:
                row = _row(item, self.state.items.get(item_id))
                if row is not None:
                    rows[item_id] = row
        for item_id in self.out.delisted:
            rows.pop(item_id, None)
        return rows

    def _is_active_ad(self, item_id: str) -> bool:
        item = self.out.rows.get(item_id)
        if item is not None:
            return item.type == ItemType.AD and item.status == ItemStatus.ACTIVE
        seen = self.state.items.get(item_id)
        return seen is not None and seen.type == ItemType.AD and seen.status == ItemStatus.ACTIVE

    def _is_pinned(self, item_id: str) -> bool:
        item = self.out.rows.get(item_id)
        if item is not None:
            return bool(item.pinned)
        seen = self.state.items.get(item_id)
        return bool(seen is not None and seen.pinned)

    def _pins(self) -> Steps:
        """Read the pinned items whole (a count first: none, and none stored, is free);
        a stored pin missing from them is looked up."""
        current = self._current()
        handles = {
            (self.out.rows[i].handle if i in self.out.rows else None)
            or (self.state.items[i].handle if i in self.state.items else None)
            for i in current
        }
        scope = plan.pinned_scope(self.watch, {h for h in handles if h})
        if scope is None:
            return
        stored = {i for i in current if self._is_pinned(i)}
        count = yield from self._count(scope)
        if count == 0 and not stored:
            return
        shop = scope_shop(self.watch)
        pinned: set[str] = set()
        page = 1
        limit = max(1, min(MAX_LIMIT, count))
        while (page - 1) * limit < min(count, WINDOW):
            params = scope.params.with_page(page, limit)
            result = yield from self._fetch(scope, params, shop=shop)
            rows = [i for i in result.items if shop is None or i.shop_id == shop]
            self.out.add(rows, listed=True)
            pinned.update(i.id for i in rows)
            if not result.has_more:
                break
            page += 1
        yield from self._confirm(sorted(i for i in stored - pinned if i not in self.out.rows))


def scope_shop(watch: Watch) -> str | None:
    return watch.target.value if watch.target.kind == "shop" else None
