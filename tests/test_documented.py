"""The documented-only strategy end to end in the pure planner: a stored order, the
library as the API now holds it (no ``updatedAfter``, ``updatedAt`` moving on every
refresh), and what one poll asks and finds.

Each row of ``CASES``: the stored items (all listed in the scope's ``newest`` order), the
library now, the requests the poll must make in order, and the events it must find.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.library import Library, run
from watcher.config import Watch, parse_settings
from watcher.detect import Seen, WatchState
from watcher.models import EventKind, Item, ItemStatus, ItemType
from watcher.planner import Freshness, Outcome, Planner, Resume

T0 = datetime(2026, 4, 1, tzinfo=UTC)
REFRESH = T0 + timedelta(days=40)
FRESH = Freshness("2026-05-10", REFRESH + timedelta(hours=1))


def item(n: int, **fields: Any) -> Item:
    """Item ``n``: an active, unpinned ad published ``n`` days after T0, indexed a day
    later, every ``updatedAt`` at the last refresh (metrics move it)."""
    published = T0 + timedelta(days=n)
    values: dict[str, Any] = {
        "type": ItemType.AD,
        "status": ItemStatus.ACTIVE,
        "pinned": False,
        "published_at": published,
        "indexed_at": published + timedelta(days=1),
        "created_at": published + timedelta(days=1),
        "updated_at": REFRESH,
        **fields,
    }
    return Item(id=f"tiktok_{n}", **values)


def remembered(source: Item) -> Seen:
    at = REFRESH - timedelta(days=1)
    return Seen(
        item_id=source.id,
        first_seen=at,
        last_seen=at,
        type=source.type,
        status=source.status,
        pinned=source.pinned,
        updated_at=REFRESH - timedelta(days=1),
        published_at=source.published_at,
        listed=True,
    )


def known(items: tuple[Item, ...]) -> WatchState:
    """A watch's memory the day before the refresh: ``items`` listed in the stored order,
    ``updatedAt`` seen moving on metrics."""
    return WatchState(
        baseline_at=REFRESH - timedelta(days=1),
        watermark=REFRESH - timedelta(days=1),
        refresh="2026-05-09",
        has_baseline=True,
        exact=False,
        moves=True,
        items={i.id: remembered(i) for i in items},
    )


def watch() -> Watch:
    config = """
version: 1
api: {api_key: k}
notifiers: {n: {urls: ["json://localhost/"]}}
defaults: {notify: [n]}
watches:
  - {name: w, hashtag: creatine}
"""
    return parse_settings(config, "watches.yaml", env={}).watches[0]


SCOPE = tuple(item(n) for n in range(1, 21))


def scope(**changes: dict[str, Any]) -> tuple[Item, ...]:
    """The scope with per-item field changes (``"7": {"status": ...}``)."""
    return tuple(replace(i, **changes.get(i.id[7:], {})) for i in SCOPE)


@dataclass(frozen=True)
class Case:
    name: str
    library: tuple[Item, ...]
    requests: tuple[str, ...]
    events: tuple[tuple[EventKind, int], ...] = ()
    stored: tuple[Item, ...] = SCOPE


ACT = "status=active type=ad"
PROBES = (f"newest desc 11x1 {ACT}", f"newest desc 16x1 {ACT}", f"newest desc 6x1 {ACT}")
"""The identity probes of the active ads (quarter points) a quiet list still gets."""
QUIET = ("count", "newest desc 1x1", f"count {ACT}", *PROBES, "count pinned=yes")
STOPPED = {"status": ItemStatus.INACTIVE}
NEW = {"indexed_at": REFRESH, "created_at": REFRESH}
CASES = [
    Case("a quiet refresh: free counts and the identity probes", SCOPE, QUIET),
    Case(
        "a new ad on top: the old top row found one down, the new row read",
        (*SCOPE, item(30, **NEW)),
        (
            "count",
            "newest desc 2x1",
            "newest desc 1x1",
            f"count {ACT}",
            f"newest desc 11x1 {ACT}",
            f"newest desc 17x1 {ACT}",
            f"newest desc 6x1 {ACT}",
            "count pinned=yes",
        ),
        ((EventKind.NEW_AD, 30),),
    ),
    Case(
        "a late ad lands below known rows, where its publishedAt puts it",
        (*SCOPE, item(99, published_at=T0 + timedelta(days=17.5), **NEW)),
        (
            "count",
            "newest desc 2x1",
            "newest desc 12x1",
            "newest desc 7x1",
            "newest desc 5x1",
            "newest desc 2x2",
            "newest desc 1x1",
            f"count {ACT}",
            f"newest desc 11x1 {ACT}",
            f"newest desc 17x1 {ACT}",
            f"newest desc 6x1 {ACT}",
            "count pinned=yes",
        ),
        ((EventKind.NEW_AD, 99),),
    ),
    Case(
        "one ad stops: it leaves the active list, a lookup says why",
        scope(**{"12": STOPPED}),
        (
            "count",
            "newest desc 1x1",
            f"count {ACT}",
            f"newest desc 10x1 {ACT}",
            f"newest desc 15x1 {ACT}",
            f"newest desc 5x1 {ACT}",
            f"newest desc 8x1 {ACT}",
            f"newest desc 9x1 {ACT}",
            "lookup 12",
            "count pinned=yes",
        ),
        ((EventKind.AD_STOPPED, 12),),
    ),
    Case(
        "a stop and a resume cancel in the count: the identity probes find both",
        scope(**{"15": STOPPED, "4": {"status": ItemStatus.ACTIVE}}),
        (
            "count",
            "newest desc 1x1",
            f"count {ACT}",
            f"newest desc 10x1 {ACT}",
            f"newest desc 15x1 {ACT}",
            f"newest desc 18x1 {ACT}",
            f"newest desc 6x3 {ACT}",
            f"newest desc 5x1 {ACT}",
            f"newest desc 8x1 {ACT}",
            f"newest desc 2x4 {ACT}",
            "lookup 15",
            "count pinned=yes",
        ),
        ((EventKind.AD_RESUMED, 4), (EventKind.AD_STOPPED, 15)),
        stored=scope(**{"4": STOPPED}),
    ),
    Case(
        "a pin evicts another, the pinned count unchanged: the pinned list is read",
        scope(**{"18": {"pinned": True}, "8": {"pinned": True}}),
        (*QUIET, "newest desc 1x2 pinned=yes", "lookup 3"),
        ((EventKind.PINNED, 18), (EventKind.UNPINNED, 3)),
        stored=scope(**{"3": {"pinned": True}, "8": {"pinned": True}}),
    ),
    Case(
        "a removed item: gone from the list and not found, no event",
        tuple(i for i in SCOPE if i.id != "tiktok_9"),
        (
            "count",
            "newest desc 1x1",
            "newest desc 11x1",
            "newest desc 16x1",
            "newest desc 14x1",
            "newest desc 3x5",
            "lookup 9",
            f"count {ACT}",
            f"newest desc 10x1 {ACT}",
            f"newest desc 15x1 {ACT}",
            f"newest desc 5x1 {ACT}",
            "count pinned=yes",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_documented_refresh_table(case: Case) -> None:
    """Each case makes exactly its requests and finds exactly its events."""
    library = Library(sorted(case.library, key=lambda i: i.id), updated_after=False)
    state = known(case.stored)
    planner = Planner(watch(), state, Resume(), FRESH, updated_after=False, now=FRESH.at)
    done = run(planner, library)
    assert tuple(library.requests) == case.requests
    assert done.outcome is Outcome.OK
    assert planner.credits == library.served
    found = sorted((e.kind, int(e.item.id[7:])) for e in done.detection.events if e.item)
    assert found == sorted(case.events)
    again = Planner(
        watch(), done.detection.state, Resume(), FRESH, updated_after=False, now=FRESH.at
    )
    replay = Library(sorted(case.library, key=lambda i: i.id), updated_after=False)
    rerun = run(again, replay)
    assert not [e for e in rerun.detection.events if e.kind is not EventKind.BASELINE], (
        "what one poll learned, the next poll does not find again"
    )


def test_the_baseline_reads_the_scope_once_then_never_whole() -> None:
    """Without updatedAfter the first run reads the whole scope in newest order, capped
    polls going on from their row; after it, a quiet refresh reads a handful of rows."""
    library = Library(SCOPE, updated_after=False)
    config_cap = watch()
    capped = replace(config_cap, max_credits_per_poll=8)
    first = run(
        Planner(capped, WatchState(), Resume(), FRESH, updated_after=False, now=FRESH.at), library
    )
    assert (first.outcome, first.resume) == (Outcome.CAPPED, Resume(order=8))
    state, resume = first.detection.state, first.resume
    polls = 1
    while resume.pending:
        done = run(
            Planner(capped, state, resume, FRESH, updated_after=False, now=FRESH.at), library
        )
        state, resume = done.detection.state, done.resume
        polls += 1
    assert polls == 3
    assert library.served == len(SCOPE)
    assert sum(s.listed for s in state.items.values()) == len(SCOPE)
    later = Freshness("2026-05-11", FRESH.at + timedelta(days=1))
    quiet = Library(SCOPE, updated_after=False)
    run(
        Planner(
            watch(), replace(state, moves=True), Resume(), later, updated_after=False, now=later.at
        ),
        quiet,
    )
    assert quiet.served <= 4, quiet.requests


def test_identity_probes_never_cap_a_quiet_refresh_by_themselves() -> None:
    """400 active ads want 127 identity probes; with ``max_credits_per_poll: 10`` they are
    cut to what half the poll's remaining credits pay for, so a quiet refresh completes
    in one poll. (Uncut, every poll was capped and redone from the start: forever.)"""
    many = tuple(item(n) for n in range(1, 401))
    state = known(many)
    for cap, probes in ((10, 3), (200, 63), (1_000, 127)):
        library = Library(many, updated_after=False)
        capped = replace(watch(), max_credits_per_poll=cap)
        done = run(
            Planner(capped, state, Resume(), FRESH, updated_after=False, now=FRESH.at), library
        )
        assert done.outcome is Outcome.OK, cap
        assert sum(ACT in r and "x1" in r for r in library.requests) == probes, cap
