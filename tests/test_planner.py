"""The sans-I/O planner: which requests one poll makes, what it spends, how it ends.

Each row of ``CASES`` is a watch, its memory and progress, and the library as the API
holds it; the planner runs against an in-memory library (``tests/library.py``) and the
row says the requests it must make (in order), the credits, the outcome, where a capped
poll goes on, and what it learned of ``updatedAfter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.library import Library, run
from watcher.config import Watch, parse_settings
from watcher.detect import Seen, WatchState
from watcher.errors import ValidationDetail, ValidationFailed
from watcher.models import EventKind, Item, ItemStatus, ItemType
from watcher.planner import Fetch, Freshness, Outcome, Planner, Resume, skips

T0 = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 11, 8, 30, tzinfo=UTC)
"""The local clock of the poll (events carry it); the API's clock is ``FRESH.at``."""


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


FRESH = Freshness("2026-04-10", day(10))
OLD_REFRESH = "2026-04-09"


def row(n: int, updated: float, **fields: Any) -> Item:
    """Item ``n``, published, indexed and last updated on API day ``updated``."""
    stamps = {"published_at": day(updated), "indexed_at": day(updated), "created_at": day(updated)}
    values: dict[str, Any] = {
        "type": ItemType.AD,
        "status": ItemStatus.ACTIVE,
        "pinned": False,
        "views": 50_000 + n,
        "updated_at": day(updated),
        **stamps,
        **fields,
    }
    return Item(id=f"tiktok_{n}", **values)


def rows(*numbers: int) -> tuple[Item, ...]:
    """Items updated on the day of their number."""
    return tuple(row(n, n) for n in numbers)


def watch_of(extra: str) -> Watch:
    fields = ", ".join(line.strip() for line in extra.splitlines() if line.strip())
    config = f"""
version: 1
api: {{api_key: k}}
notifiers: {{n: {{urls: ["json://localhost/"]}}}}
defaults: {{notify: [n]}}
watches:
  - {{name: w, hashtag: creatine{", " + fields if fields else ""}}}
"""
    return parse_settings(config, "watches.yaml", env={}).watches[0]


def seen(item: Item, *, first: float = 5, follow_until: float | None = None) -> Seen:
    return Seen(
        item_id=item.id,
        first_seen=day(first),
        last_seen=day(first),
        type=item.type,
        status=item.status,
        pinned=item.pinned,
        views=item.views,
        updated_at=item.updated_at,
        announced=follow_until is None,
        follow_until=day(follow_until) if follow_until is not None else None,
    )


@dataclass(frozen=True)
class Case:
    name: str
    requests: tuple[str, ...]
    outcome: Outcome
    credits: int
    watch: str = ""
    library: tuple[Item, ...] = ()
    has_baseline: bool = True
    watermark: float | None = 5
    remembered: tuple[Seen, ...] = ()
    refresh: str = OLD_REFRESH
    resume: Resume = field(default_factory=Resume)
    known: bool | None = True
    """What the planner knows of ``updatedAfter`` (None: not learned yet)."""
    api_accepts: bool = True
    after: Resume = field(default_factory=Resume)
    learned: bool | None = None
    """What it knows at the end (default: what the API does)."""
    new_watermark: float | None = None
    events: int | None = None
    moves: bool | None = None
    """What was learned of ``updatedAt`` moving on metric updates."""


CASES = [
    Case(
        "baseline: learns updatedAfter with a free count, then reads one row",
        ("count after", "updatedAt desc 1x1"),
        Outcome.BASELINE,
        1,
        library=rows(1, 2),
        has_baseline=False,
        watermark=None,
        known=None,
        new_watermark=2,
    ),
    Case(
        "baseline without updatedAfter: the whole scope once, in newest order",
        ("count after", "newest desc 1x50"),
        Outcome.BASELINE,
        5,
        library=rows(1, 2, 3, 4, 5),
        has_baseline=False,
        watermark=None,
        known=None,
        api_accepts=False,
        new_watermark=5,
    ),
    Case(
        "baseline read cut by the cap: goes on from the next row of the order",
        ("newest desc 1x3",),
        Outcome.CAPPED,
        3,
        watch="max_credits_per_poll: 3",
        library=rows(1, 2, 3, 4, 5),
        has_baseline=False,
        watermark=None,
        known=False,
        api_accepts=False,
        after=Resume(order=3),
    ),
    Case(
        "notify_all baseline: the newest changes, as many pages as the cap affords",
        ("updatedAt desc 1x4",),
        Outcome.BASELINE,
        4,
        watch="on_first_run: notify_all\nmax_credits_per_poll: 4",
        library=rows(*range(1, 11)),
        has_baseline=False,
        watermark=None,
        events=4,
    ),
    Case(
        "summary baseline: one row plus free counts",
        ("updatedAt desc 1x1", "count", "count status=active type=ad", "count pinned=yes"),
        Outcome.BASELINE,
        1,
        watch="on_first_run: summary",
        library=rows(1, 2),
        has_baseline=False,
        watermark=None,
        events=1,
    ),
    Case(
        "rank-only baseline: no feed row, the tracked set",
        ("count after", "views desc 1x5 status=active"),
        Outcome.BASELINE,
        5,
        watch="events: [rank_jump]\nrank_jump: {track: 5}",
        library=rows(*range(1, 9)),
        has_baseline=False,
        watermark=None,
        known=None,
    ),
    Case(
        "change feed: the rows changed since the watermark, oldest first",
        ("updatedAt asc 1x50 after",),
        Outcome.OK,
        3,
        library=rows(*range(1, 9)),
        new_watermark=8,
    ),
    Case(
        "quiet refresh: an empty feed costs nothing and keeps the watermark",
        ("updatedAt asc 1x50 after",),
        Outcome.OK,
        0,
        library=rows(1, 2, 3),
        new_watermark=5,
    ),
    Case(
        "capped feed: stops before a page it can't afford, resumes at that page",
        ("updatedAt asc 1x2 after",),
        Outcome.CAPPED,
        2,
        watch="max_credits_per_poll: 2",
        library=rows(*range(1, 9)),
        watermark=3,
        after=Resume(page=2),
    ),
    Case(
        "capped feed in the same refresh: goes on from its page",
        ("updatedAt asc 2x2 after",),
        Outcome.CAPPED,
        2,
        watch="max_credits_per_poll: 2",
        library=rows(*range(1, 9)),
        watermark=3,
        refresh=FRESH.refresh,
        resume=Resume(page=2),
        after=Resume(page=3),
    ),
    Case(
        "a refresh landing mid-feed: the feed starts over from the same watermark",
        ("updatedAt asc 1x2 after",),
        Outcome.CAPPED,
        2,
        watch="max_credits_per_poll: 2",
        library=rows(*range(1, 9)),
        watermark=3,
        resume=Resume(page=2),
        after=Resume(page=2),
    ),
    Case(
        "updatedAfter refused mid-life: learned, and the scope's order is read once",
        ("updatedAt asc 1x50 after", "newest desc 1x50"),
        Outcome.OK,
        8,
        library=rows(*range(1, 9)),
        watermark=6,
        api_accepts=False,
        new_watermark=8,
    ),
    Case(
        "updatedAt proved exact: the scan resumed from its row down to the watermark",
        ("updatedAt desc 2x2", "updatedAt desc 2x4"),
        Outcome.OK,
        6,
        library=rows(*range(1, 9)),
        watermark=4,
        refresh=FRESH.refresh,
        resume=Resume(offset=2, mark=day(8)),
        moves=False,
        known=False,
        api_accepts=False,
        new_watermark=8,
    ),
    Case(
        "follow-ups: one lookup per followed item, newest first; a gone one is free",
        ("updatedAt asc 1x50 after", "lookup 4", "lookup 3"),
        Outcome.OK,
        1,
        watch="min_views: 1000000",
        library=rows(1, 2, 3),
        watermark=9,
        remembered=(
            seen(row(3, 3), first=8, follow_until=12),
            seen(row(4, 4), first=9, follow_until=12),
        ),
    ),
    Case(
        "follow-ups stop at the cap",
        ("updatedAt asc 1x1 after", "lookup 4"),
        Outcome.OK,
        1,
        watch="min_views: 1000000\nmax_credits_per_poll: 1",
        library=rows(1, 2, 3, 4),
        watermark=9,
        remembered=(
            seen(row(3, 3), first=8, follow_until=12),
            seen(row(4, 4), first=9, follow_until=12),
        ),
    ),
    Case(
        "follow-ups end with the filter window",
        ("updatedAt asc 1x50 after",),
        Outcome.OK,
        0,
        watch="min_views: 1000000",
        library=rows(1, 2, 3),
        watermark=9,
        remembered=(seen(row(3, 3), first=2, follow_until=9),),
    ),
    Case(
        "tracked set: read once per refresh for rank_jump",
        ("views desc 1x5 status=active",),
        Outcome.OK,
        5,
        watch="events: [rank_jump]\nrank_jump: {track: 5}",
        library=rows(*range(1, 9)),
    ),
    Case(
        "a capped feed leaves the tracked set and follow-ups for the poll that completes it",
        ("updatedAt asc 1x2 after",),
        Outcome.CAPPED,
        2,
        watch="events: [new_ad, rank_jump]\nrank_jump: {track: 5}\nmax_credits_per_poll: 2",
        library=rows(*range(1, 9)),
        after=Resume(page=2),
    ),
]


FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def test_a_row_from_the_future_never_moves_the_watermark() -> None:
    """Issue 15.9: a row stamped past the API's clock is read, but the watermark stays sane."""
    hostile = row(7, 7, updated_at=FUTURE)
    state = _state(Case("", (), Outcome.OK, 0))
    for known, api in ((True, True), (False, False)):
        library = Library((*rows(1, 2, 6), hostile), updated_after=api)
        planner = Planner(watch_of(""), state, Resume(), FRESH, updated_after=known, now=NOW)
        done = run(planner, library)
        assert done.detection.state.watermark == day(6)
    baseline = Planner(watch_of(""), WatchState(), Resume(), FRESH, updated_after=True, now=NOW)
    done = run(baseline, Library((*rows(1, 2), hostile)))
    assert done.detection.state.watermark in {None, FRESH.at}


def test_the_cap_counts_rows_returned_not_the_credits_header() -> None:
    """Issue 15.11: full pages claiming 0 credits still stop at max_credits_per_poll."""
    library = Library(rows(*range(1, 60)), credits_header=0, total_override=10**9)
    state = _state(Case("", (), Outcome.OK, 0, watermark=0))
    watch = watch_of("max_credits_per_poll: 10")
    planner = Planner(watch, state, Resume(), FRESH, updated_after=True, now=NOW)
    done = run(planner, library, max_requests=50)
    assert (done.outcome, planner.credits, library.served) == (Outcome.CAPPED, 10, 10)


@pytest.mark.parametrize("order", ["pinned first", "unpinned first"])
def test_duplicate_ids_in_one_page_are_one_row(order: str) -> None:
    """Issue 15.12: an id listed twice with conflicting states gives one state, one event,
    the same whichever comes first: the latest updatedAt wins."""
    item = row(3, 3)
    older = replace(item, pinned=True, updated_at=day(6), last_pinned_at=day(6))
    newer = replace(item, pinned=False, updated_at=day(7), last_unpinned_at=day(7))
    pair = (older, newer) if order == "pinned first" else (newer, older)
    state = _state(Case("", (), Outcome.OK, 0, remembered=(seen(replace(item, pinned=True)),)))
    planner = Planner(
        watch_of("events: [pinned, unpinned]"), state, Resume(), FRESH, updated_after=True, now=NOW
    )
    done = run(planner, Library(pair, as_listed=True))
    assert [e.kind for e in done.detection.events] == [EventKind.UNPINNED]
    assert done.detection.state.items[item.id].pinned is False


def _state(case: Case) -> WatchState:
    if not case.has_baseline:
        return WatchState()
    return WatchState(
        baseline_at=day(1),
        watermark=day(case.watermark) if case.watermark is not None else None,
        refresh=case.refresh,
        has_baseline=True,
        items={s.item_id: s for s in case.remembered},
        moves=case.moves,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_planner_table(case: Case) -> None:
    """Each case makes exactly its requests, spends its credits, ends as it says."""
    library = Library(case.library, updated_after=case.api_accepts)
    planner = Planner(
        watch_of(case.watch),
        _state(case),
        case.resume,
        FRESH,
        updated_after=case.known,
        now=NOW,
    )
    done = run(planner, library)
    assert tuple(library.requests) == case.requests
    assert (done.outcome, planner.credits, done.resume) == (case.outcome, case.credits, case.after)
    assert planner.credits == library.served
    learned = case.learned if case.learned is not None else case.api_accepts
    if case.known is not None or case.requests[0] == "count after":
        assert planner.updated_after == learned
    if case.new_watermark is not None:
        assert done.detection.state.watermark == day(case.new_watermark)
    if case.events is not None:
        assert len(done.detection.events) == case.events


def test_events_carry_the_local_time_of_the_poll() -> None:
    """Detection compares on the API's clock; events say when the poll found them, locally."""
    library = Library((*rows(1, 2), row(9, 9.5)))
    planner = Planner(
        watch_of(""),
        _state(Case("", (), Outcome.OK, 0)),
        Resume(),
        FRESH,
        updated_after=True,
        now=NOW,
    )
    done = run(planner, library)
    assert [(e.kind, e.detected_at) for e in done.detection.events] == [(EventKind.NEW_AD, NOW)]


def test_an_error_the_planner_cannot_use_fails_the_poll() -> None:
    """A 400 on another field than updatedAfter is raised from absorb: the poll fails."""
    planner = Planner(watch_of(""), WatchState(), Resume(), FRESH, updated_after=None, now=NOW)
    assert planner.next_request() is not None
    wrong = ValidationFailed("bad", details=[ValidationDetail("query-string.search")])
    with pytest.raises(ValidationFailed):
        planner.absorb(wrong)
    assert planner.updated_after is None


def test_a_done_planner_takes_no_answer() -> None:
    """Absorbing after Done is a poller bug, said loudly."""
    planner = Planner(
        watch_of(""),
        _state(Case("", (), Outcome.OK, 0)),
        Resume(),
        FRESH,
        updated_after=True,
        now=NOW,
    )
    request = planner.next_request()
    assert isinstance(request, Fetch)
    run(planner, Library(()))
    with pytest.raises(RuntimeError):
        planner.absorb(0)


@pytest.mark.parametrize(
    ("has_baseline", "refresh", "resume", "skipped"),
    [
        (True, FRESH.refresh, Resume(), True),
        (True, OLD_REFRESH, Resume(), False),
        (True, FRESH.refresh, Resume(page=2), False),
        (False, None, Resume(), False),
    ],
)
def test_refresh_gate(
    has_baseline: bool, refresh: str | None, resume: Resume, skipped: bool
) -> None:
    """A poll is skipped, for free, only after a complete poll of the same refresh."""
    assert skips(has_baseline, refresh, resume, FRESH) is skipped
