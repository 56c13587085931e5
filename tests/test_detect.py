"""Pure detection: a watch's memory and one poll's observation -> events and new memory.

Most behaviour is described as plain-data scenarios (a baseline, then polls, each with the
events it must give) run by one parametrized test, which also re-runs every poll on the
state it produced and checks that nothing is detected twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.detect import (
    Detection,
    FirstRun,
    Observation,
    Rules,
    WatchState,
    baseline,
    detect,
    event_key,
)
from watcher.models import Event, EventKind, Item, ItemStatus, ItemType

T0 = datetime(2026, 4, 1, tzinfo=UTC)
BASELINE_DAY = 10
ALL_ITEM_EVENTS = frozenset(
    {
        EventKind.NEW_AD,
        EventKind.NEW_VIDEO,
        EventKind.PINNED,
        EventKind.UNPINNED,
        EventKind.AD_STOPPED,
        EventKind.AD_RESUMED,
        EventKind.RANK_JUMP,
    }
)
ACTIVE = ItemStatus.ACTIVE
INACTIVE = ItemStatus.INACTIVE


def day(n: float) -> datetime:
    """API time: ``n`` days after 2026-04-01 00:00 UTC."""
    return T0 + timedelta(days=n)


def refresh_of(n: float) -> str:
    """The ``latestReadyDate`` current at API day ``n``."""
    return day(n).date().isoformat()


def make(n: int, kind: ItemType, created: float, **fields: Any) -> Item:
    stamps: dict[str, Any] = {
        "created_at": day(created),
        "indexed_at": day(created),
        "published_at": day(created),
        "updated_at": day(created),
    }
    defaults: dict[str, Any] = {
        "tiktok_id": str(7_000_000_000_000_000_000 + n),
        "type": kind,
        "status": ACTIVE,
        "pinned": False,
        "views": 50_000,
        "handle": "rivalbrand",
        "language": "en",
        "caption": f"item {n}",
        "days_running": 3,
    }
    return Item(id=f"tiktok_{n}", **{**stamps, **defaults, **fields})


def ad(n: int, created: float = 5, **fields: Any) -> Item:
    """An active, unpinned ad first indexed (and last updated) on API day ``created``."""
    return make(n, ItemType.AD, created, **fields)


def video(n: int, created: float = 5, **fields: Any) -> Item:
    """An organic video first indexed (and last updated) on API day ``created``."""
    return make(n, ItemType.ORGANIC, created, **fields)


def at(item: Item, when: float, **changes: Any) -> Item:
    """``item`` as the API serves it after a library change on day ``when``."""
    return replace(item, updated_at=day(when), **changes)


def pinned(item: Item, when: float) -> Item:
    return at(item, when, pinned=True, last_pinned_at=day(when))


def unpinned(item: Item, when: float) -> Item:
    return at(item, when, pinned=False, last_unpinned_at=day(when))


def stopped(item: Item, when: float) -> Item:
    return at(item, when, status=INACTIVE)


def resumed(item: Item, when: float) -> Item:
    return at(item, when, status=ACTIVE)


def reindexed(item: Item, when: float) -> Item:
    return at(item, when, indexed_at=day(when))


def ranked(item: Item, rank: int | None) -> Item:
    """``item`` with a new ``metrics.rank``: a daily metric update, ``updatedAt`` unchanged."""
    return replace(item, rank=rank)


def rules(**overrides: Any) -> Rules:
    values: dict[str, Any] = {"watch": "rival", "events": ALL_ITEM_EVENTS, **overrides}
    return Rules(**values)


def observe(
    when: float,
    *,
    changed: Sequence[Item] = (),
    rechecked: Sequence[Item] = (),
    gone: Sequence[str] = (),
    tracked: Sequence[Item] | None = None,
    exact: bool = True,
    watermark: datetime | None = None,
) -> Observation:
    """One poll at API day ``when``; the watermark is the latest ``updatedAt`` it read."""
    stamps = [i.updated_at for i in changed if i.updated_at is not None]
    return Observation(
        at=day(when),
        refresh=refresh_of(when),
        changed=tuple(changed),
        rechecked=tuple(rechecked),
        gone=tuple(gone),
        tracked=None if tracked is None else tuple(tracked),
        watermark=watermark or (max(stamps) if stamps else None),
        exact=exact,
    )


def start(
    watch_rules: Rules, items: Sequence[Item] = (), tracked: Sequence[Item] | None = None
) -> WatchState:
    """A silent baseline on day 10 whose latest ``updatedAt`` in scope is day 10."""
    obs = observe(BASELINE_DAY, changed=items, tracked=tracked, watermark=day(BASELINE_DAY))
    return baseline(watch_rules, WatchState(), obs, FirstRun.SILENT).state


def pairs(events: Sequence[Event]) -> list[tuple[str, str]]:
    return sorted((e.kind.value, e.item.id if e.item else "-") for e in events)


# --- the scenario table ----------------------------------------------------------------

A1, A2, A3 = ad(1), ad(2), ad(3)
V1, V2, V3 = video(11), video(12), video(13)
NEW_A = ad(21, created=11)
NEW_V = video(22, created=11)
SMALL_A = ad(23, created=11, views=900)


@dataclass(frozen=True)
class Poll:
    """One poll: what it read and the (kind, item id) events it must give."""

    when: float
    changed: tuple[Item, ...] = ()
    rechecked: tuple[Item, ...] = ()
    gone: tuple[str, ...] = ()
    tracked: tuple[Item, ...] | None = None
    exact: bool = True
    expect: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    polls: tuple[Poll, ...]
    known: tuple[Item, ...] = ()
    rules: dict[str, Any] = field(default_factory=dict)
    tracked_at_baseline: tuple[Item, ...] | None = None


SCENARIOS = [
    # new items
    Scenario(
        "new ad after the baseline",
        (Poll(11, changed=(NEW_A,), expect=(("new_ad", NEW_A.id),)),),
    ),
    Scenario(
        "new organic video after the baseline",
        (Poll(11, changed=(NEW_V,), expect=(("new_video", NEW_V.id),)),),
    ),
    Scenario(
        "new item dated by indexedAt when createdAt is missing",
        (Poll(11, changed=(replace(NEW_A, created_at=None),), expect=(("new_ad", NEW_A.id),)),),
    ),
    Scenario(
        "new item dated by publishedAt when createdAt and indexedAt are missing",
        (
            Poll(
                11,
                changed=(replace(NEW_V, created_at=None, indexed_at=None),),
                expect=(("new_video", NEW_V.id),),
            ),
        ),
    ),
    Scenario(
        "an item with no timestamps at all is never announced as new",
        (
            Poll(
                11,
                changed=(replace(NEW_V, created_at=None, indexed_at=None, published_at=None),),
            ),
        ),
    ),
    Scenario(
        "a video created before the baseline, met later, is silent",
        (Poll(11, changed=(at(V1, 11),)),),
    ),
    Scenario(
        "an ad created before the baseline, re-indexed after it, is silent",
        (Poll(11, changed=(reindexed(replace(A1, status=INACTIVE), 11),)),),
    ),
    Scenario(
        "a new item that disappears and comes back re-indexed is announced once",
        (
            Poll(11, changed=(NEW_A,), expect=(("new_ad", NEW_A.id),)),
            Poll(12),
            Poll(14, changed=(reindexed(NEW_A, 14),)),
        ),
    ),
    Scenario(
        "a baseline item re-indexed later is silent",
        (Poll(12, changed=(reindexed(V1, 12),)),),
        known=(V1,),
    ),
    Scenario(
        "the same new item in two polls is announced once",
        (
            Poll(11, changed=(NEW_V,), expect=(("new_video", NEW_V.id),)),
            Poll(12, changed=(NEW_V,)),
        ),
    ),
    # pins
    Scenario(
        "a known video pinned, then unpinned",
        (
            Poll(11, changed=(pinned(V1, 11),), expect=(("pinned", V1.id),)),
            Poll(12, changed=(unpinned(pinned(V1, 11), 12),), expect=(("unpinned", V1.id),)),
        ),
        known=(V1,),
    ),
    Scenario(
        "the pin moving between videos gives one unpinned and one pinned",
        (
            Poll(
                11,
                changed=(unpinned(pinned(V1, 3), 11), pinned(V2, 11)),
                expect=(("pinned", V2.id), ("unpinned", V1.id)),
            ),
        ),
        known=(pinned(V1, 3), V2),
    ),
    Scenario(
        "a pin flip is found even without pin timestamps",
        (Poll(11, changed=(at(V1, 11, pinned=True),), expect=(("pinned", V1.id),)),),
        known=(V1,),
    ),
    Scenario(
        "an unknown old video pinned since the watermark gives pinned",
        (Poll(11, changed=(pinned(V3, 11),), expect=(("pinned", V3.id),)),),
    ),
    Scenario(
        "an unknown old video unpinned since the watermark gives unpinned",
        (
            Poll(
                11,
                changed=(unpinned(pinned(V3, 2), 11),),
                expect=(("unpinned", V3.id),),
            ),
        ),
    ),
    Scenario(
        "an unknown old video pinned before the watermark is silent",
        (Poll(11, changed=(reindexed(pinned(V3, 4), 11),)),),
    ),
    Scenario(
        "a new video posted pinned gives new_video and pinned",
        (
            Poll(
                11,
                changed=(pinned(NEW_V, 11),),
                expect=(("new_video", NEW_V.id), ("pinned", NEW_V.id)),
            ),
        ),
    ),
    Scenario(
        "a known item remembered without a pin state uses the pin timestamps",
        (Poll(11, changed=(pinned(V1, 11),), expect=(("pinned", V1.id),)),),
        known=(replace(V1, pinned=None),),
    ),
    # stop / resume
    Scenario(
        "a known ad flapping active/inactive/active gives stopped then resumed",
        (
            Poll(11, changed=(stopped(A1, 11),), expect=(("ad_stopped", A1.id),)),
            Poll(11.5, changed=(stopped(A1, 11),)),
            Poll(12, changed=(resumed(A1, 12),), expect=(("ad_resumed", A1.id),)),
            Poll(12.5, changed=(resumed(A1, 12),)),
        ),
        known=(A1,),
    ),
    Scenario(
        "an ad stopping twice on different days gives two stops",
        (
            Poll(11, changed=(stopped(A1, 11),), expect=(("ad_stopped", A1.id),)),
            Poll(12, changed=(resumed(A1, 12),), expect=(("ad_resumed", A1.id),)),
            Poll(13, changed=(stopped(A1, 13),), expect=(("ad_stopped", A1.id),)),
        ),
        known=(A1,),
    ),
    Scenario(
        "an organic video changing status never gives stop or resume",
        (
            Poll(11, changed=(stopped(V1, 11),)),
            Poll(12, changed=(resumed(V1, 12),)),
        ),
        known=(V1,),
    ),
    Scenario(
        "a known ad whose type is missing now is still an ad",
        (
            Poll(
                11, changed=(stopped(replace(A1, type=None), 11),), expect=(("ad_stopped", A1.id),)
            ),
        ),
        known=(A1,),
    ),
    Scenario(
        "an unknown old ad now inactive is inferred stopped while updatedAt is exact",
        (Poll(11, changed=(stopped(A3, 11),), expect=(("ad_stopped", A3.id),)),),
    ),
    Scenario(
        "an unknown old ad now active is inferred resumed while updatedAt is exact",
        (Poll(11, changed=(at(A3, 11),), expect=(("ad_resumed", A3.id),)),),
    ),
    Scenario(
        "no status inference when the poll says updatedAt is not exact",
        (Poll(11, changed=(stopped(A3, 11),), exact=False),),
    ),
    Scenario(
        "no status inference for an unknown old ad whose pin moved",
        (Poll(11, changed=(pinned(A3, 11),), expect=(("pinned", A3.id),)),),
    ),
    Scenario(
        "no status inference for an unknown old ad not updated since the watermark",
        (Poll(11, changed=(replace(A3, status=INACTIVE),)),),
    ),
    Scenario(
        "no status inference once updatedAt moved on a known item for no alerted reason",
        (
            Poll(11, changed=(at(V1, 11),)),
            Poll(12, changed=(stopped(A3, 12),)),
            Poll(13, changed=(stopped(A1, 13),), expect=(("ad_stopped", A1.id),)),
        ),
        known=(V1, A1),
    ),
    Scenario(
        "no status inference in the very poll that shows updatedAt is not exact",
        (Poll(11, changed=(at(A3, 11), at(A2, 11), at(V1, 11))),),
        known=(V1,),
    ),
    # rank jumps
    Scenario(
        "a climb of exactly min_climb jumps",
        (
            Poll(11, tracked=(ranked(A1, 30),)),
            Poll(12, tracked=(ranked(A1, 10),), expect=(("rank_jump", A1.id),)),
        ),
    ),
    Scenario(
        "a climb of min_climb - 1 does not jump",
        (
            Poll(11, tracked=(ranked(A1, 30),)),
            Poll(12, tracked=(ranked(A1, 11),)),
        ),
    ),
    Scenario(
        "a rank remembered at the baseline counts as observed",
        (Poll(11, tracked=(ranked(A1, 7),), expect=(("rank_jump", A1.id),)),),
        tracked_at_baseline=(ranked(A1, 48),),
    ),
    Scenario(
        "a custom min_climb is honoured",
        (
            Poll(11, tracked=(ranked(A1, 30),)),
            Poll(12, tracked=(ranked(A1, 25),), expect=(("rank_jump", A1.id),)),
        ),
        rules={"min_climb": 5},
    ),
    Scenario(
        "an item new to the tracked set is remembered silently",
        (Poll(11, tracked=(ranked(A2, 1),)),),
    ),
    Scenario(
        "a missing rank now gives no jump",
        (
            Poll(11, tracked=(ranked(A1, 60),)),
            Poll(12, tracked=(ranked(A1, None),)),
        ),
    ),
    Scenario(
        "a missing rank before gives no jump",
        (
            Poll(11, tracked=(ranked(A1, None),)),
            Poll(12, tracked=(ranked(A1, 1),)),
        ),
    ),
    Scenario(
        "a worsening rank never jumps",
        (
            Poll(11, tracked=(ranked(A1, 5),)),
            Poll(12, tracked=(ranked(A1, 90),)),
        ),
    ),
    Scenario(
        "a climb is measured from the rank last observed, even across a missing one",
        (
            Poll(11, tracked=(ranked(A1, 50),)),
            Poll(12, tracked=(ranked(A1, None),)),
            Poll(13, tracked=(ranked(A1, 20),), expect=(("rank_jump", A1.id),)),
        ),
    ),
    Scenario(
        "a climbing ad also in the change feed of the same poll still jumps",
        (
            Poll(11, tracked=(ranked(A1, 48),)),
            Poll(
                12,
                changed=(ranked(pinned(A1, 12), 7),),
                tracked=(ranked(pinned(A1, 12), 7),),
                expect=(("pinned", A1.id), ("rank_jump", A1.id)),
            ),
        ),
        known=(A1,),
    ),
    Scenario(
        "a tracked item outside the handle scope never jumps",
        (
            Poll(11, tracked=(ranked(ad(31, handle="rivalbrand_fans"), 60),)),
            Poll(12, tracked=(ranked(ad(31, handle="rivalbrand_fans"), 1),)),
        ),
        rules={"handle": "@rivalbrand"},
    ),
    # metric filters and following
    Scenario(
        "a new ad under min_views is announced when a re-check shows it crossed",
        (
            Poll(11, changed=(SMALL_A,)),
            Poll(12, rechecked=(replace(SMALL_A, views=9_000),)),
            Poll(13, rechecked=(replace(SMALL_A, views=20_000),), expect=(("new_ad", SMALL_A.id),)),
            Poll(14, rechecked=(replace(SMALL_A, views=30_000),)),
        ),
        rules={"min_views": 10_000},
    ),
    Scenario(
        "a followed item crossing on the last instant of the window is announced",
        (
            Poll(11, changed=(SMALL_A,)),
            Poll(18, rechecked=(replace(SMALL_A, views=20_000),), expect=(("new_ad", SMALL_A.id),)),
        ),
        rules={"min_views": 10_000},
    ),
    Scenario(
        "a followed item crossing after the window is silent",
        (
            Poll(11, changed=(SMALL_A,)),
            Poll(18.5, rechecked=(replace(SMALL_A, views=20_000),)),
            Poll(19, rechecked=(replace(SMALL_A, views=40_000),)),
        ),
        rules={"min_views": 10_000},
    ),
    Scenario(
        "a followed item crossing in the change feed is announced",
        (
            Poll(11, changed=(SMALL_A,)),
            Poll(
                12,
                changed=(pinned(replace(SMALL_A, views=20_000), 12),),
                expect=(("new_ad", SMALL_A.id),),
            ),
        ),
        rules={"min_views": 10_000, "events": frozenset({EventKind.NEW_AD})},
    ),
    Scenario(
        "a followed item reported gone is no longer followed",
        (
            Poll(11, changed=(SMALL_A,)),
            Poll(12, gone=(SMALL_A.id,)),
            Poll(13, rechecked=(replace(SMALL_A, views=20_000),)),
        ),
        rules={"min_views": 10_000},
    ),
    Scenario(
        "an old item crossing min_views is recorded silently",
        (
            Poll(11, changed=(at(replace(V3, views=100), 11),)),
            Poll(12, rechecked=(replace(V3, views=90_000),)),
            Poll(13, changed=(at(replace(V3, views=95_000), 13, pinned=None),)),
        ),
        rules={"min_views": 10_000},
    ),
    Scenario(
        "a known item falling under min_views and back is never new again",
        (
            Poll(11, changed=(at(replace(V1, views=10), 11, pinned=True),)),
            Poll(12, changed=(at(replace(V1, views=99_000), 12, pinned=False),)),
        ),
        known=(V1,),
        rules={"min_views": 10_000, "events": frozenset({EventKind.NEW_VIDEO})},
    ),
    Scenario(
        "a new inactive ad under a status filter is announced when it turns active",
        (
            Poll(11, changed=(replace(NEW_A, status=INACTIVE),)),
            Poll(12, changed=(resumed(NEW_A, 12),), expect=(("new_ad", NEW_A.id),)),
        ),
        rules={"status": ACTIVE, "events": frozenset({EventKind.NEW_AD})},
    ),
    Scenario(
        "a known ad leaving and re-entering the status filter is never new",
        (
            Poll(11, changed=(stopped(A1, 11),), expect=(("ad_stopped", A1.id),)),
            Poll(12, changed=(resumed(A1, 12),), expect=(("ad_resumed", A1.id),)),
        ),
        known=(A1,),
        rules={"status": ACTIVE},
    ),
    Scenario(
        "the language filter is case-insensitive and drops other or unknown languages",
        (
            Poll(
                11,
                changed=(
                    ad(41, created=11, language="EN"),
                    ad(42, created=11, language="fr"),
                    ad(43, created=11, language=None),
                ),
                expect=(("new_ad", "tiktok_41"),),
            ),
        ),
        rules={"language": "en"},
    ),
    Scenario(
        "an item of unknown type in an ads-only scope is a new ad",
        (Poll(11, changed=(replace(NEW_A, type=None),), expect=(("new_ad", NEW_A.id),)),),
        rules={"type": ItemType.AD},
    ),
    Scenario(
        "the type filter drops the other type",
        (Poll(11, changed=(NEW_A, NEW_V), expect=(("new_ad", NEW_A.id),)),),
        rules={"type": ItemType.AD},
    ),
    Scenario(
        "an out-of-scope item is never remembered, so a pin on it is silent",
        (
            Poll(11, changed=(video(44, created=11, language="de"),)),
            Poll(12, changed=(pinned(video(44, created=11, language="de"), 12),)),
        ),
        rules={"language": "en"},
    ),
    Scenario(
        "the handle filter is exact, case-insensitive, with or without @",
        (
            Poll(
                11,
                changed=(
                    ad(51, created=11, handle="RivalBrand"),
                    ad(52, created=11, handle="@rivalbrand"),
                    ad(53, created=11, handle="rivalbrand_fans"),
                    ad(54, created=11, handle="therivalbrand"),
                    ad(55, created=11, handle=None),
                ),
                expect=(("new_ad", "tiktok_51"), ("new_ad", "tiktok_52")),
            ),
        ),
        rules={"handle": "@rivalBRAND"},
    ),
    Scenario(
        "a handle rule without @ matches a handle served with it",
        (
            Poll(
                11,
                changed=(ad(56, created=11, handle="@rivalbrand"),),
                expect=(("new_ad", "tiktok_56"),),
            ),
        ),
        rules={"handle": "rivalbrand"},
    ),
    # which kinds are emitted
    Scenario(
        "only the kinds listed in the rules are emitted",
        (
            Poll(
                11,
                changed=(NEW_A, NEW_V, pinned(V1, 11), stopped(A1, 11)),
                expect=(("new_video", NEW_V.id), ("pinned", V1.id)),
            ),
        ),
        known=(V1, A1),
        rules={"events": frozenset({EventKind.NEW_VIDEO, EventKind.PINNED})},
    ),
    Scenario(
        "rank_jump is silent unless listed",
        (
            Poll(11, tracked=(ranked(A1, 80),)),
            Poll(12, tracked=(ranked(A1, 1),)),
        ),
        rules={"events": ALL_ITEM_EVENTS - {EventKind.RANK_JUMP}},
    ),
    Scenario(
        "a kind left out is not emitted later either: the change is remembered",
        (
            Poll(11, changed=(stopped(A1, 11),)),
            Poll(12, changed=(stopped(A1, 11),)),
        ),
        known=(A1,),
        rules={"events": frozenset({EventKind.NEW_AD})},
    ),
]


@dataclass
class Run:
    """Every poll of a scenario: its observation, detection and the re-run's detection."""

    rules: Rules
    steps: list[tuple[Poll, Observation, Detection, Detection]]


def run_scenario(case: Scenario) -> Run:
    watch_rules = rules(**case.rules)
    state = start(watch_rules, case.known, case.tracked_at_baseline)
    steps = []
    for poll in case.polls:
        obs = observe(
            poll.when,
            changed=poll.changed,
            rechecked=poll.rechecked,
            gone=poll.gone,
            tracked=poll.tracked,
            exact=poll.exact,
        )
        result = detect(watch_rules, state, obs)
        again = detect(watch_rules, result.state, obs)
        steps.append((poll, obs, result, again))
        state = result.state
    return Run(watch_rules, steps)


@pytest.mark.parametrize("case", SCENARIOS, ids=[c.name for c in SCENARIOS])
def test_scenario_gives_exactly_the_expected_events(case: Scenario) -> None:
    """Each poll of the scenario gives exactly its expected (kind, item) events."""
    for poll, _obs, result, _again in run_scenario(case).steps:
        assert pairs(result.events) == sorted(poll.expect), f"poll on day {poll.when}"


@pytest.mark.parametrize("case", SCENARIOS, ids=[c.name for c in SCENARIOS])
def test_rerunning_a_poll_on_its_own_result_detects_nothing(case: Scenario) -> None:
    """Detection is idempotent: the same observation on the resulting state gives no event."""
    for poll, _obs, result, again in run_scenario(case).steps:
        assert again.events == (), f"poll on day {poll.when}"
        assert again.state == result.state, f"poll on day {poll.when}"


@pytest.mark.parametrize("case", SCENARIOS, ids=[c.name for c in SCENARIOS])
def test_event_keys_are_deterministic_and_unique(case: Scenario) -> None:
    """The same inputs give the same keys; no two events of a scenario share a key."""
    first = [e.key for step in run_scenario(case).steps for e in step[2].events]
    second = [e.key for step in run_scenario(case).steps for e in step[2].events]
    assert first == second
    assert len(set(first)) == len(first)


@pytest.mark.parametrize("case", SCENARIOS, ids=[c.name for c in SCENARIOS])
def test_events_name_the_watch_and_the_poll_time(case: Scenario) -> None:
    """Every event carries the watch, the poll's API time, its item and a key naming both."""
    run = run_scenario(case)
    for _poll, obs, result, _again in run.steps:
        for event in result.events:
            assert event.watch == "rival"
            assert event.detected_at == obs.at
            assert event.item is not None
            assert event.key.startswith(f"rival|{event.kind.value}|{event.item.id}|")


def test_scenario_table_covers_every_item_event_kind() -> None:
    """The table exercises every per-item kind, so a kind can't silently go untested."""
    kinds = {kind for case in SCENARIOS for poll in case.polls for kind, _ in poll.expect}
    assert kinds == {k.value for k in ALL_ITEM_EVENTS}


# --- baseline ----------------------------------------------------------------------------

BASELINE_ITEMS = (
    A1,
    stopped(A2, 4),
    pinned(V1, 3),
    V2,
    replace(V3, views=500),
    ad(61, language="fr"),
)


def first_run(mode: FirstRun, **overrides: Any) -> tuple[Observation, Detection]:
    obs = observe(BASELINE_DAY, changed=BASELINE_ITEMS, watermark=day(9))
    return obs, baseline(
        rules(language="en", min_views=1_000, **overrides), WatchState(), obs, mode
    )


@pytest.mark.parametrize("mode", list(FirstRun))
def test_baseline_remembers_the_scope_and_sets_the_watermark(mode: FirstRun) -> None:
    """Every mode remembers the in-scope items and takes the baseline from the API's clock."""
    _obs, result = first_run(mode)
    state = result.state
    assert state.has_baseline
    assert state.baseline_at == day(9)
    assert state.watermark == day(9)
    assert state.refresh == refresh_of(BASELINE_DAY)
    assert set(state.items) == {i.id for i in BASELINE_ITEMS[:5]}
    assert result.touched == frozenset(state.items)
    assert all(seen.announced and seen.follow_until is None for seen in state.items.values())
    assert state.items[A2.id].status == INACTIVE
    assert state.items[V1.id].pinned is True


def test_silent_baseline_gives_no_event() -> None:
    """on_first_run: silent records the baseline and alerts nothing."""
    _obs, result = first_run(FirstRun.SILENT)
    assert result.events == ()


def test_notify_all_baseline_announces_each_in_scope_item_passing_filters() -> None:
    """notify_all: one new_* per in-scope item passing the filters, none for the others."""
    _obs, result = first_run(FirstRun.NOTIFY_ALL)
    assert pairs(result.events) == [
        ("new_ad", A1.id),
        ("new_ad", A2.id),
        ("new_video", V1.id),
        ("new_video", V2.id),
    ]


def test_notify_all_baseline_honours_the_watch_event_kinds() -> None:
    """notify_all emits only the kinds the watch listens to."""
    _obs, result = first_run(FirstRun.NOTIFY_ALL, events=frozenset({EventKind.NEW_AD}))
    assert pairs(result.events) == [("new_ad", A1.id), ("new_ad", A2.id)]


def test_summary_baseline_gives_one_baseline_event_with_the_callers_figures() -> None:
    """summary: exactly one BASELINE event, carrying the figures the caller counted."""
    obs = observe(BASELINE_DAY, changed=BASELINE_ITEMS, watermark=day(9))
    figures = {"items": 250, "active_ads": 40, "pinned": 3}
    result = baseline(rules(), WatchState(), obs, FirstRun.SUMMARY, summary=figures)
    assert len(result.events) == 1
    event = result.events[0]
    assert event.kind == EventKind.BASELINE
    assert event.item is None
    assert event.watch == "rival"
    assert event.detected_at == obs.at
    assert event.key == event_key("rival", EventKind.BASELINE, "-", day(9).isoformat())
    assert event.figures == figures
    assert event.figures is not figures


def test_summary_baseline_without_figures_still_gives_its_event() -> None:
    """summary with nothing counted still sends the one baseline message, figures empty."""
    _obs, result = first_run(FirstRun.SUMMARY)
    assert [(e.kind, e.figures) for e in result.events] == [(EventKind.BASELINE, {})]


def test_summary_baseline_key_falls_back_to_the_refresh_on_an_empty_scope() -> None:
    """An empty scope has no watermark: the baseline event is keyed by the refresh."""
    obs = observe(BASELINE_DAY, watermark=None)
    result = baseline(rules(), WatchState(), obs, FirstRun.SUMMARY)
    assert [e.key for e in result.events] == [
        event_key("rival", EventKind.BASELINE, "-", refresh_of(BASELINE_DAY))
    ]


def test_baseline_remembers_the_tracked_ranks_without_jumps() -> None:
    """The tracked set read at the baseline is remembered, with ranks, and never jumps."""
    obs = observe(
        BASELINE_DAY,
        changed=(A1,),
        tracked=(ranked(A1, 3), ranked(A2, 40)),
        watermark=day(9),
    )
    result = baseline(rules(), WatchState(), obs, FirstRun.NOTIFY_ALL)
    assert pairs(result.events) == [("new_ad", A1.id)]
    assert result.state.items[A1.id].rank == 3
    assert result.state.items[A2.id].rank == 40


def test_baseline_on_an_empty_scope_still_records_a_baseline() -> None:
    """A watch whose scope is empty is baselined: later items are new."""
    obs = observe(BASELINE_DAY, watermark=None)
    state = baseline(rules(), WatchState(), obs, FirstRun.SILENT).state
    assert state.has_baseline
    later = detect(rules(), state, observe(11, changed=(NEW_A,)))
    assert pairs(later.events) == [("new_ad", NEW_A.id)]


def test_baseline_without_a_watermark_is_dated_by_the_poll_time() -> None:
    """Nothing dated read at the first run: old items met later are neither new nor changed."""
    watch_rules = rules()
    obs = observe(BASELINE_DAY, changed=(replace(V1, updated_at=None),), watermark=None)
    state = baseline(watch_rules, WatchState(), obs, FirstRun.SILENT).state
    assert state.baseline_at == day(BASELINE_DAY)
    assert state.watermark is None
    later = detect(watch_rules, state, observe(11, changed=(pinned(A2, 3), V2, NEW_A)))
    assert pairs(later.events) == [("new_ad", NEW_A.id)]


# --- memory ------------------------------------------------------------------------------


def test_followed_item_records_the_window_end() -> None:
    """A new item under min_views is followed until the poll's time plus filter_window."""
    watch_rules = rules(min_views=10_000, filter_window=timedelta(days=3))
    result = detect(watch_rules, start(watch_rules), observe(11, changed=(SMALL_A,)))
    seen = result.state.items[SMALL_A.id]
    assert not seen.announced
    assert seen.follow_until == day(14)


def test_followed_item_window_ends_even_when_not_rechecked() -> None:
    """A poll after the window closes the follow of an item it didn't read."""
    watch_rules = rules(min_views=10_000)
    state = detect(watch_rules, start(watch_rules), observe(11, changed=(SMALL_A,))).state
    result = detect(watch_rules, state, observe(19))
    seen = result.state.items[SMALL_A.id]
    assert seen.announced
    assert seen.follow_until is None
    assert SMALL_A.id in result.touched


def test_updated_at_moving_without_a_change_clears_exact() -> None:
    """A known item whose updatedAt moved with no status/pin change makes the watch inexact."""
    watch_rules = rules()
    state = start(watch_rules, (V1, A1))
    assert state.exact
    quiet = detect(watch_rules, state, observe(11, changed=(reindexed(V1, 11), stopped(A1, 11))))
    assert quiet.state.exact
    moved = detect(watch_rules, quiet.state, observe(12, changed=(at(V1, 12),)))
    assert not moved.state.exact
    later = detect(watch_rules, moved.state, observe(13, changed=(resumed(A1, 13),)))
    assert not later.state.exact


def test_an_observation_not_read_as_a_feed_leaves_exactness_to_evidence() -> None:
    """Observation.exact=False (rows not read as a change feed) says nothing of the API:
    the state stays exact until a row shows updatedAt moving for no change."""
    watch_rules = rules()
    result = detect(watch_rules, start(watch_rules), observe(11, exact=False))
    assert result.state.exact


def test_watermark_and_refresh_advance_but_never_go_back() -> None:
    """The new watermark is the latest seen; an older poll watermark doesn't move it back."""
    watch_rules = rules()
    state = start(watch_rules)
    forward = detect(watch_rules, state, observe(12, changed=(stopped(A3, 12),)))
    assert forward.state.watermark == day(12)
    assert forward.state.refresh == refresh_of(12)
    back = detect(watch_rules, forward.state, observe(13, watermark=day(11)))
    assert back.state.watermark == day(12)


def test_detect_leaves_the_given_state_untouched() -> None:
    """Detection is pure: the input state's memory is not mutated."""
    watch_rules = rules()
    state = start(watch_rules, (A1,))
    before = dict(state.items)
    detect(watch_rules, state, observe(11, changed=(stopped(A1, 11), NEW_A)))
    assert dict(state.items) == before


def test_touched_names_exactly_the_items_whose_memory_changed() -> None:
    """``touched`` lists what the store must upsert: items read in scope, not the rest."""
    watch_rules = rules(language="en")
    state = start(watch_rules, (A1, V1))
    result = detect(
        watch_rules,
        state,
        observe(11, changed=(stopped(A1, 11), ad(71, created=11, language="fr"), NEW_V)),
    )
    assert result.touched == {A1.id, NEW_V.id}


def test_remembered_item_keeps_known_fields_when_the_api_omits_them() -> None:
    """A field missing from a later read keeps the remembered value (real data has gaps)."""
    watch_rules = rules()
    state = start(watch_rules, (ranked(A1, 9),))
    sparse = Item(id=A1.id, updated_at=day(11), pinned=True, last_pinned_at=day(11))
    result = detect(watch_rules, state, observe(11, changed=(sparse,)))
    seen = result.state.items[A1.id]
    assert (seen.type, seen.status, seen.rank, seen.views) == (ItemType.AD, ACTIVE, 9, 50_000)
    assert seen.pinned is True
    assert seen.first_seen == day(BASELINE_DAY)
    assert seen.last_seen == day(11)


# --- event identity and figures ------------------------------------------------------------


def test_event_key_separates_watches_kinds_items_and_changes() -> None:
    """Keys differ when any of watch, kind, item or change differs."""
    base = event_key("w", EventKind.PINNED, "i", "c")
    variants = {
        event_key("w2", EventKind.PINNED, "i", "c"),
        event_key("w", EventKind.UNPINNED, "i", "c"),
        event_key("w", EventKind.PINNED, "i2", "c"),
        event_key("w", EventKind.PINNED, "i", "c2"),
    }
    assert base not in variants
    assert len(variants) == 4


def test_status_events_of_one_change_share_a_key_across_polls() -> None:
    """A stop seen by two differently-timed polls from one memory has one key (dedup)."""
    watch_rules = rules()
    state = start(watch_rules, (A1,))
    early = detect(watch_rules, state, observe(11, changed=(stopped(A1, 11),)))
    late = detect(watch_rules, state, observe(11.9, changed=(stopped(A1, 11),)))
    assert [e.key for e in early.events] == [e.key for e in late.events]


def test_event_figures_carry_the_numbers_behind_them() -> None:
    """new_* carry views, stops carry days running, jumps carry both ranks and views."""
    watch_rules = rules()
    state = start(watch_rules, (A1,), tracked=(ranked(A2, 48),))
    result = detect(
        watch_rules,
        state,
        observe(11, changed=(NEW_V, stopped(A1, 11)), tracked=(ranked(A2, 7),)),
    )
    figures = {e.kind: e.figures for e in result.events}
    assert figures[EventKind.NEW_VIDEO] == {"views": 50_000}
    assert figures[EventKind.AD_STOPPED] == {"days_running": 3}
    assert figures[EventKind.RANK_JUMP] == {"rank_before": 48, "rank_after": 7, "views": 50_000}


def test_updated_at_moving_for_no_change_is_learned_per_scope() -> None:
    """A known row whose updatedAt moved while status, pin and indexing did not: the scope
    learns that updatedAt moves on metric updates (moves=True, exact=False)."""
    watch_rules = rules()
    state = start(watch_rules, (A1,))
    moved = replace(A1, updated_at=day(12))
    result = detect(watch_rules, state, replace(observe(12, changed=(moved,)), exact=False))
    assert (result.state.moves, result.state.exact, result.events) == (True, False, ())


def test_a_row_untouched_since_the_baseline_proves_updated_at_exact() -> None:
    """Two refreshes after the baseline a row still carries an updatedAt from before it:
    metric updates don't move updatedAt here (moves=False); the same row read sooner
    proves nothing."""
    watch_rules = rules()
    state = start(watch_rules, (A1,))
    soon = detect(watch_rules, state, observe(11, changed=(A1,)))
    assert soon.state.moves is None
    later_on = detect(watch_rules, state, observe(13, changed=(A1,)))
    assert later_on.state.moves is False


def test_the_stored_order_follows_listed_and_delisted_rows() -> None:
    """Rows read in the scope's newest order are listed with their publishedAt; a row
    found gone from it leaves the order, its memory kept, with no event."""
    watch_rules = rules()
    state = start(watch_rules, (A1, A2))
    obs = replace(observe(12, changed=(A1,)), listed=frozenset({A1.id}))
    listed = detect(watch_rules, state, obs)
    assert listed.state.items[A1.id].listed
    assert listed.state.items[A1.id].published_at == A1.published_at
    gone = detect(watch_rules, listed.state, replace(observe(13), delisted=frozenset({A1.id})))
    assert not gone.state.items[A1.id].listed
    assert gone.events == ()


def test_an_out_of_scope_row_of_the_list_is_kept_silently() -> None:
    """A near-miss handle's row in the API's list is remembered for the stored order only
    (outside=True): it raises no event, now or when it changes, and reaches no milestone."""
    watch_rules = rules(handle="rivalbrand", milestones=(1,))
    state = start(watch_rules)
    other = ad(31, created=11, handle="rivalbrand_fans", days_running=5)
    obs = replace(observe(12, changed=(other,)), listed=frozenset({other.id}))
    first = detect(watch_rules, state, obs)
    assert first.events == ()
    assert first.state.items[other.id].outside
    stop = replace(stopped(other, 13), days_running=9)
    again = detect(watch_rules, first.state, replace(observe(13, changed=(stop,)), exact=False))
    assert again.events == ()
