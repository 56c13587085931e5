"""PURE polling plan: what a watch asks the API for, so it finds every change for the
fewest credits. The credit arithmetic of ``watcher check`` lives here too.

The API bills one credit per returned row and its data changes once a day, at a refresh.
So a watch's poll is planned in three gates and three reads:

1. **Refresh gate** (free): ``GET /v1/system/freshness``. If ``latestReadyDate`` is the one
   the watch already processed, nothing can have changed: the poll ends at 0 credits.
2. **Change feed** (one credit per changed row): the watch's scope sorted by
   ``updatedAt``, ascending, with ``updatedAfter`` = the watch's watermark, page by page.
   ``updatedAt`` moves when an item is indexed or re-indexed (a late-indexed item too,
   whatever its ``publishedAt``), stops or resumes, is pinned or unpinned; so the feed
   returns exactly the new, stopped, resumed, pinned and unpinned rows, and a refresh with
   nothing new in scope costs 0. If ``max_credits_per_poll`` cuts the feed, the next poll
   resumes at the next page with the same watermark (ascending order keeps earlier pages
   stable).
   *Without* ``updatedAfter`` ([chosen] in the contract; the documented API refuses it)
   the watch picks, per scope, the cheapest exact strategy it has learned (shown by
   ``watcher status`` and ``watcher check``):

   - **updatedAt scan**, where ``updatedAt`` proved exact for the scope (a known row came
     back from a later refresh with ``updatedAt`` unchanged, and none ever moved for no
     change): ``updatedAt`` descending, probing 1 row first, then pages that double in
     size (offsets 1, 2-3, 4-7, ... then 32 a page), down to the watermark. A quiet
     refresh costs 1 credit; at most about twice the changed rows are read.
   - **stored newest order** (``watcher.planner.newest``), until then, and for good
     where ``updatedAt`` moves on metric updates (the documented API: every row moves at
     every refresh, so no sort returns "what changed"). The scope is read ONCE in whole,
     in ``newest`` order (``publishedAt`` desc, ties by id), over several polls if
     ``max_credits_per_poll`` requires; each row's ``publishedAt`` and the list it forms
     are kept in the watch's memory. Then, at every refresh, three lists are
     reconciled with it, each after a free count (a page past the end returns the true
     total for 0 credits; 3 count requests a watch a refresh):

     a. the scope, every status: it changes only by insertions (new and late-indexed
        items, items coming back) and deletions (removed items). ``newest`` never
        reorders, so the shift of a known row read at a position (``limit=1``, 1
        credit) is insertions minus deletions above it: segments whose length moved
        are bisected, short ones read whole (``watcher.planner.order``), about
        ``log2(scope)`` credits a change. The first probe goes right below the band
        where new items can land (rows published within the largest
        ``indexedAt - publishedAt`` seen in scope, 6 days before any is seen, plus 12
        hours), so a new item and a removal below the band never cancel unseen.
     b. its active ads (``status=active&type=ad``): a stop leaves this list, a resume
        joins it, both at a position fixed by ``publishedAt``. Since a stop and a resume
        in one refresh cancel in the count, identity probes are made even when the
        count did not move (its quarter points up to 32 ads, one more level per doubling
        past it, so 8 to 16 ads between two probes, and past 64 ads one level more: 4
        to 8), never more than half of what the poll may still spend; a pair is then
        found from the shift of the rows between them.
     c. its pinned items, ``pinned: yes`` in a ``POST /query`` body (the documented
        place of ``pinned``): read whole whenever the count or the memory has any (a
        profile pins at most three, and a new pin that evicts an old one leaves the
        count unchanged). A shop's route has no ``pinned`` and no body: its profiles'
        handles (learned from its rows) are searched (``searchArea: profile``) and rows
        of other shops dropped; near-miss handles are read and dropped too.

     A stored row a list no longer holds is looked up by id (1 credit): stopped,
     unpinned, or removed (404). Ties (rows sharing a ``publishedAt``) may come back in
     any order: probes step off them, and one that lands on a tied row reads outwards
     to an untied known row on each side, a scan of the affected range (about twice
     the ties); a probe that contradicts the stored order (a known row outside its
     segment) makes the segment read whole, never a guess. The result window
     (``page x limit`` <= 10,000) is respected: rows past it are neither read nor
     judged. A refresh whose reconcile is cut by the cap keeps every row it read (so
     the stored order moves on) and is done again at the next poll.

     What counts and shifts cannot tell: an insertion and a deletion (or a stop and a
     resume) inside one segment between two probes, e.g. side by side. For the scope
     that needs a removal (rare) next to a new item in the band; for active ads, a stop
     and a resume with no probe between them. Catching every such pair needs
     every row of the list read (a full reread of the ads, the cost this strategy
     avoids): measured recall is in the README.
3. **Follow-ups**: new items below a metric filter (``min_views``) are re-read one by one
   (1 credit each) until they cross it or ``filter_window`` ends; and for ``rank_jump``
   the tracked set (the ``track`` most-viewed active items, ``sortBy=views``) once per
   refresh, ``track`` credits.

The baseline (first run) reads one row (the scope's latest ``updatedAt`` becomes the
watermark; without ``updatedAfter``, the whole scope in ``newest`` order, see above),
plus the tracked set for ``rank_jump``; ``summary`` adds free counts (a page
past the end returns the total for 0 credits); ``notify_all`` reads the scope newest
change first, up to ``max_credits_per_poll``.

Filters the route lacks (``min_views``, ``language``, ``status``, the exact handle) are
applied client-side to what the feed returns, so an item excluded today still has its
later changes seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from watcher.config import Watch
from watcher.detect import FirstRun, Rules
from watcher.models import (
    ITEM_KINDS,
    EventKind,
    ItemStatus,
    ItemType,
    Order,
    SortBy,
    StatusFilter,
    TypeFilter,
)
from watcher.trendtrack import ListParams, QueryBody

FEED_KINDS = ITEM_KINDS - {EventKind.RANK_JUMP, EventKind.BASELINE}
MAX_LIMIT = 50
FALLBACK_PAGE = 32
"""The largest page of the fallback scan (a power of two, so pages stay aligned)."""


Params = ListParams | QueryBody

UPDATED_AFTER_KEY = "api.updated_after"
"""The meta key of what was learned of ``updatedAfter`` ("1" accepted, "0" refused)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """How to address a watch's items: base parameters and, for a shop, its id."""

    params: Params
    shop_id: str | None = None

    def with_(self, **changes: object) -> Params:
        return replace(self.params, **changes)  # type: ignore[arg-type]


def _type(value: str) -> str | None:
    return None if value == "all" else value


def _raw_body(watch: Watch) -> QueryBody:
    """A raw ``query`` watch's typed body (built at config load), the watch's ``type``
    filling in a body that sets none. Paging, order and ``updatedAfter`` are the plan's:
    a user's raw query may not steer them."""
    body = watch.target.body or QueryBody()
    kind = _type(watch.type)
    return replace(
        body,
        type=body.type or (TypeFilter(kind) if kind else None),
        sort_by=None,
        order=None,
        page=None,
        limit=None,
        updated_after=None,
    )


def feed_scope(watch: Watch) -> Scope:
    """The watch's scope for the change feed: no status or metric filter server-side,
    so items crossing those boundaries keep showing their changes."""
    target = watch.target
    kind = _type(watch.type)
    typed = {"type": kind} if kind else {}
    if target.kind == "shop":
        return Scope(ListParams.from_json(typed), shop_id=target.value)
    if target.kind in {"hashtag", "handle"}:
        area = "hashtag" if target.kind == "hashtag" else "profile"
        return Scope(ListParams.from_json({"search": [target.value], "searchArea": area, **typed}))
    if target.kind == "search":
        return Scope(
            QueryBody.from_json(
                {
                    "search": list(target.values),
                    "searchArea": target.search_area,
                    "keywordMode": target.keyword_mode,
                    **typed,
                }
            )
        )
    # status and minViews are applied client-side (see the module's docstring)
    return Scope(replace(_raw_body(watch), status=None, min_views=None))


def order_scope(watch: Watch) -> Scope:
    """The scope read in ``newest`` order (the documented-only strategy's stored order)."""
    scope = feed_scope(watch)
    return Scope(scope.with_(sort_by="newest", order="desc"), scope.shop_id)


def active_scope(watch: Watch) -> Scope | None:
    """The scope's active ads in ``newest`` order (stops and resumes move rows in and out
    of it), or None for a scope of organic videos only."""
    scope = order_scope(watch)
    kind = scope.params.type  # the watch's type, or a raw query's own
    if kind is not None and str(kind) == "organic":
        return None
    return Scope(scope.with_(status="active", type="ad"), scope.shop_id)


def pinned_scope(watch: Watch, handles: Iterable[str] = ()) -> Scope | None:
    """The scope's pinned items through ``POST /query`` (the documented place of
    ``pinned``), newest first. A shop's route has no ``pinned``: its profiles' handles are
    searched instead (``searchArea: profile``), and the caller drops rows of other shops.
    None when there is nothing to search (a shop with no known profile)."""
    target = watch.target
    kind = _type(watch.type)
    typed = {"type": kind} if kind else {}
    base = {"pinned": "yes", "sortBy": "newest", "order": "desc", **typed}
    if target.kind == "shop":
        names = sorted({h.lstrip("@") for h in handles if h})
        if not names:
            return None
        return Scope(QueryBody.from_json({"search": names, "searchArea": "profile", **base}))
    if target.kind in {"hashtag", "handle"}:
        area = "hashtag" if target.kind == "hashtag" else "profile"
        return Scope(QueryBody.from_json({"search": [target.value], "searchArea": area, **base}))
    scope = feed_scope(watch)
    return Scope(scope.with_(pinned="yes", sort_by="newest", order="desc"))


def tracked_scope(watch: Watch) -> Scope:
    """The rank tracked set: the ``track`` most-viewed active items of the watch's scope
    (a raw query keeps its own metric filters, which define its universe)."""
    limit = min(watch.rank_jump.track, MAX_LIMIT)
    if watch.target.kind == "query":
        body = replace(
            _raw_body(watch),
            sort_by=SortBy.VIEWS,
            order=Order.DESC,
            status=StatusFilter.ACTIVE,
            page=1,
            limit=limit,
        )
        return Scope(body)
    wire = {"sort_by": "views", "order": "desc", "status": "active", "page": 1, "limit": limit}
    scope = feed_scope(watch)
    return Scope(scope.with_(**wire), scope.shop_id)


def rules_for(watch: Watch) -> Rules:
    """The detection rules of a watch (client-side filters included)."""
    min_views = watch.min_views
    status = None if watch.status == "all" else ItemStatus(watch.status)
    body = watch.target.body if watch.target.kind == "query" else None
    body_type = None
    if body is not None:
        if body.min_views is not None:
            min_views = max(min_views or 0, body.min_views)
        if status is None and body.status in {"active", "inactive"}:
            status = ItemStatus(str(body.status))
        body_type = body.type
    item_type = watch.type if watch.type != "all" else body_type
    return Rules(
        watch=watch.name,
        events=watch.events,
        type=ItemType(str(item_type)) if item_type in {"ad", "organic"} else None,
        status=status,
        min_views=min_views,
        language=watch.language,
        handle=watch.target.value if watch.target.kind == "handle" else None,
        filter_window=watch.filter_window,
        min_climb=watch.rank_jump.min_climb,
        milestones=watch.milestones,
    )


def needs_feed(watch: Watch) -> bool:
    """Whether any event the watch wants comes from the change feed."""
    return bool(watch.events & FEED_KINDS)


def needs_tracked(watch: Watch) -> bool:
    return EventKind.RANK_JUMP in watch.events


def first_run_mode(watch: Watch) -> FirstRun:
    return FirstRun(watch.on_first_run)


def feed_limit(watch: Watch) -> int:
    """Rows per feed page: fixed for a watch so a capped feed resumes page-aligned."""
    return max(1, min(MAX_LIMIT, watch.max_credits_per_poll))


def aligned_page(offset: int, budget: int = FALLBACK_PAGE) -> tuple[int, int]:
    """The (page, limit) that reads a descending feed from row ``offset`` on, at most
    ``budget`` rows (``budget`` >= 1).

    Row 0 is a 1-row probe. After it, pages double in size, as page ``p`` at limit ``L``
    covers rows ``(p-1)L`` to ``pL-1``: rows 1, 2-3, 4-7, ... 32-63 (page 2 at limits
    1, 2, 4, ... 32), then pages 3, 4, ... at limit 32. Limits are powers of two dividing
    the offset, so a scan can stop anywhere and go on later from there.
    """
    if offset <= 0:
        return 1, 1
    limit = min(offset & -offset, FALLBACK_PAGE, 1 << (max(budget, 1).bit_length() - 1))
    return offset // limit + 1, limit


def strategy(
    watch: Watch, updated_after: bool | None, exact: bool = True, moves: bool | None = None
) -> str:
    """How the watch reads its changes, in words, from what was learned of the API
    (``updated_after``: accepted, refused, or not yet known) and of its scope (``moves``:
    whether ``updatedAt`` moves on metric updates, None if not yet learned; ``exact``
    False also says it moves)."""
    if not watch.enabled:
        return "disabled"
    if moves is None and not exact:
        moves = True
    parts: list[str] = []
    if needs_feed(watch):
        if updated_after is None:
            parts.append("change feed (updatedAfter) if accepted, else stored newest order")
        elif updated_after:
            parts.append("change feed (updatedAfter)")
        elif moves is False:
            parts.append("updatedAt scan down to the watermark (updatedAt exact here)")
        elif moves:
            parts.append("stored newest order: free counts + probes (updatedAt moves on metrics)")
        else:
            parts.append("stored newest order: free counts + probes (updatedAt not learned yet)")
    if needs_tracked(watch):
        parts.append(f"tracked set ({min(watch.rank_jump.track, MAX_LIMIT)} rows)")
    return " + ".join(parts) or "no reads"


@dataclass(frozen=True, slots=True)
class CreditEstimate:
    """Credits a watch is expected to spend; ``note`` says what the figure assumes."""

    per_day: float
    per_month: float
    note: str


def estimate(
    watch: Watch,
    polls_per_day: float,
    *,
    changes_per_refresh: float | None = None,
) -> CreditEstimate:
    """Expected credits of a watch: changed rows once per refresh, plus the tracked set.

    Polls between refreshes are free, so a watch polled every 15 minutes costs the same
    as one polled hourly; one polled every 2 days reads 2 days of changes at once.
    ``changes_per_refresh`` is the watch's own history when known, else a typical figure.
    """
    if not watch.enabled:
        return CreditEstimate(0.0, 0.0, "disabled")
    paid_per_day = min(1.0, polls_per_day)
    parts: list[str] = []
    per_day = 0.0
    if needs_feed(watch):
        changes = 5.0 if changes_per_refresh is None else changes_per_refresh
        per_day += changes  # changed rows are paid once, whenever they are read
        source = "history" if changes_per_refresh is not None else "typical"
        parts.append(f"~{changes:g} changed rows/refresh ({source})")
    if needs_tracked(watch):
        track = min(watch.rank_jump.track, MAX_LIMIT)
        per_day += track * paid_per_day
        parts.append(f"rank set {track}/refresh")
    return CreditEstimate(per_day, per_day * 30, "; ".join(parts) or "no reads")


def month_forecast(spent: int, now: datetime, month_start: datetime, days_in_month: int) -> float:
    """Linear forecast of this month's credits from what was spent so far."""
    elapsed = max((now - month_start) / timedelta(days=1), 1.0)
    return spent / elapsed * days_in_month
