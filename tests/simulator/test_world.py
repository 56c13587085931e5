"""The pure world model: determinism, evolution at refreshes only, staged changes, truth."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from watcher.simulator.changes import StageError
from watcher.simulator.clock import DAY, SIM_START
from watcher.simulator.examples import EXAMPLE_ITEMS
from watcher.simulator.growth import rank_order
from watcher.simulator.params import WorldParams
from watcher.simulator.world import World

SMALL = WorldParams.small()


def _snapshot(world: World) -> list[dict[str, object]]:
    return [world.item_json(item) for item in world.sorted_items("newest", descending=True)]


def test_same_seed_same_world_and_history() -> None:
    """Two worlds of one seed are identical, and stay so through refreshes."""
    a, b = World(4, SMALL), World(4, SMALL)
    assert _snapshot(a) == _snapshot(b)
    a.advance_to(SIM_START + 3 * DAY)
    b.advance_to(SIM_START + 3 * DAY)
    assert _snapshot(a) == _snapshot(b)
    assert a.truth() == b.truth()


def test_other_seed_other_world() -> None:
    """Another seed gives other ids and shops."""
    assert set(World(4, SMALL).shops) != set(World(5, SMALL).shops)


def test_initial_world_is_complete_and_consistent(world: World) -> None:
    """Every item has the spec's fields, ids are tiktok_<19 digits>, ranks follow 7-day gains."""
    items = world.sorted_items("newest", descending=True)
    assert len(items) == SMALL.items + EXAMPLE_ITEMS
    for item in items:
        data = world.item_json(item)
        assert str(data["id"]).startswith("tiktok_")
        assert len(str(data["tiktokId"])) == 19
        assert data["isPinned"] == data["pin"]["isCurrent"]  # type: ignore[index]
        assert item.created_at <= item.updated_at <= world.last_refresh
        assert item.published_at < item.indexed_at
    order = rank_order(items)
    assert [item.rank for item in order] == list(range(1, len(order) + 1))
    ads = [item for item in items if item.type == "ad"]
    assert {item.status for item in ads} == {"active", "inactive"}
    assert all(item.shop is not None for item in ads)
    assert any(item.shop is None for item in items)
    assert any(item.music is None for item in items)


def test_nothing_changes_between_refreshes(world: World) -> None:
    """Advancing within the same day runs no refresh and changes no item."""
    before = _snapshot(world)
    assert world.advance_to(world.last_refresh + timedelta(hours=23, minutes=59)) == 0
    assert _snapshot(world) == before
    assert world.truth() == []


def test_each_midnight_is_one_refresh(world: World) -> None:
    """Each midnight passed is exactly one refresh, and freshness advances with it."""
    start_ready = world.latest_ready_date()
    assert world.advance_to(world.last_refresh + 3 * DAY) == 3
    assert world.refreshes == 3
    assert world.latest_ready_date() > start_ready
    assert world.freshness(world.last_refresh)["latestReadyDate"] == "2026-04-26"


def test_metric_updates_do_not_move_updated_at(world: World) -> None:
    """Views grow at a refresh, but updatedAt only moves for status, pin and (re)indexing."""
    before = {item.tiktok_id: (item.views, item.updated_at) for item in world.items.values()}
    world.advance_to(world.next_refresh)
    at = world.last_refresh
    moved = {
        entry["itemId"]
        for entry in world.truth()
        if entry["kind"] in ("stopped", "resumed", "pinned", "unpinned", "restored")
    }
    grew = 0
    for tiktok_id, (views, updated) in before.items():
        item = world.items[tiktok_id]
        grew += item.views > views
        if item.id in moved:
            assert item.updated_at == at
        elif item.in_index:
            assert item.updated_at == updated
    assert grew > SMALL.items // 2


def test_documented_only_moves_updated_at_on_metrics() -> None:
    """In documented-only mode every indexed item's updatedAt moves at each refresh."""
    world = World(11, SMALL, documented_only=True)
    world.advance_to(world.next_refresh)
    indexed = [item for item in world.items.values() if item.in_index]
    assert all(item.updated_at == world.last_refresh for item in indexed)


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [("stop", "status", "inactive"), ("pin", "is_pinned", True)],
)
def test_staged_change_lands_at_next_refresh(
    world: World, kind: str, field: str, value: object
) -> None:
    """A staged stop or pin changes nothing until the next refresh, then lands and is logged."""
    item = next(
        i
        for i in world.sorted_items("newest", descending=True)
        if i.type == "ad" and i.status == "active" and not i.is_pinned
    )
    world.stage(kind, {"itemId": item.id})
    world.advance_to(world.next_refresh - timedelta(seconds=1))
    assert getattr(item, field) != value
    world.advance_to(world.next_refresh)
    assert getattr(item, field) == value
    assert item.updated_at == world.last_refresh
    kinds = {e["kind"] for e in world.truth() if e["itemId"] == item.id}
    assert {"stop": "stopped", "pin": "pinned"}[kind] in kinds


def test_staged_lagged_item_sorts_below_known_rows(world: World) -> None:
    """A new item indexed two days after publishing lands below rows already known."""
    newest_known = world.sorted_items("newest", descending=True)[0]
    item_id = world.stage("new_item", {"type": "ad", "indexLagHours": 48})
    assert world.indexed(item_id) is None
    world.advance_to(world.next_refresh)
    item = world.indexed(item_id)
    assert item is not None
    assert item.indexed_at == item.created_at == item.updated_at == world.last_refresh
    assert item.published_at == world.last_refresh - timedelta(hours=48)
    order = world.sorted_items("newest", descending=True)
    assert order.index(item) > order.index(newest_known)
    assert item.views > 0
    entry = next(e for e in world.truth() if e["itemId"] == item_id)
    assert entry["kind"] == "new_item"
    assert entry["handle"] == item.profile.handle


def test_pin_limit_unpins_the_oldest_and_logs_it(world: World) -> None:
    """Pinning a fourth item of a profile unpins its oldest pin, and the truth says so."""
    profile = max(world.profiles.values(), key=lambda p: len(p.items))
    candidates = [item for item in profile.items if item.in_index and not item.is_pinned]
    for item in candidates[:4]:
        world.stage("pin", {"itemId": item.id})
        world.advance_to(world.next_refresh)
    assert sum(item.is_pinned for item in profile.items) <= 3
    assert all(item.is_pinned for item in candidates[1:4])
    assert not candidates[0].is_pinned
    unpins = [e for e in world.truth() if e["kind"] == "unpinned"]
    assert any(e["itemId"] == candidates[0].id for e in unpins)


def test_pins_never_exceed_three_per_profile() -> None:
    """After weeks of evolution with frequent pins, no profile has more than 3 pinned items."""
    world = World(2, WorldParams(shops=4, creators=2, items=200, pin_rate=0.9, unpin_rate=0.0))
    world.advance_to(world.last_refresh + 20 * DAY)
    assert all(sum(i.is_pinned for i in p.items) <= 3 for p in world.profiles.values())
    assert Counter(e["kind"] for e in world.truth())["unpinned"] > 0


def test_staged_rank_lands_and_is_logged(world: World) -> None:
    """A staged rank puts the item at that rank at the next refresh, with a rank entry."""
    item = world.sorted_items("views", descending=False)[0]
    before = item.rank
    world.stage("rank", {"itemId": item.id, "rank": 3})
    world.advance_to(world.next_refresh)
    assert item.rank == 3
    entry = next(e for e in world.truth() if e["kind"] == "rank" and e["itemId"] == item.id)
    assert (entry["before"], entry["after"]) == (before, 3)
    assert world.item_json(item)["metrics"]["deltaRank3d"] is not None  # type: ignore[index]


def test_rank_moves_of_ten_places_are_logged(world: World) -> None:
    """Every logged natural rank move is at least 10 places; smaller ones are not logged."""
    before = {item.tiktok_id: item.rank for item in world.items.values()}
    world.advance_to(world.next_refresh)
    logged = {e["itemId"] for e in world.truth() if e["kind"] == "rank"}
    for item in world.items.values():
        old = before.get(item.tiktok_id)
        if item.in_index and old is not None and item.rank is not None:
            assert (abs(old - item.rank) >= 10) == (item.id in logged)


def test_remove_takes_item_out_of_the_index(world: World) -> None:
    """A removed item is no longer served and the truth logs it."""
    item = world.sorted_items("newest", descending=True)[5]
    world.stage("remove", {"itemId": item.id})
    world.advance_to(world.next_refresh)
    assert world.indexed(item.id) is None
    assert item not in world.sorted_items("newest", descending=True)
    assert any(e["kind"] == "removed" and e["itemId"] == item.id for e in world.truth())


@pytest.mark.parametrize(
    ("kind", "fields", "status"),
    [
        ("explode", {}, 400),
        ("pin", {"itemId": "tiktok_1"}, 404),
        ("new_item", {"shopId": "00000000-0000-4000-8000-000000000000"}, 404),
        ("new_item", {"handle": "nobody_here"}, 404),
        ("new_item", {"colour": "red"}, 400),
        ("rank", {"itemId": "x", "rank": 0}, 404),
    ],
)
def test_bad_staged_changes_are_refused(
    world: World, kind: str, fields: dict[str, object], status: int
) -> None:
    """Unknown kinds, items, shops, handles and fields are refused with a status."""
    with pytest.raises(StageError) as caught:
        world.stage(kind, fields)
    assert caught.value.status == status


def test_truth_since_is_strictly_after(world: World) -> None:
    """truth(since) returns only entries logged strictly after ``since``."""
    world.advance_to(world.next_refresh)
    first = world.last_refresh
    world.advance_to(world.next_refresh)
    later = world.truth(first)
    assert later
    assert all(entry["at"] == "2026-04-26T00:00:00Z" for entry in later)
    assert len(world.truth()) > len(later)


def test_evolution_pace_is_moderate() -> None:
    """A default-size world changes at a realistic pace: a handful of each kind per day."""
    world = World(1, WorldParams(items=1500))
    world.advance_to(world.last_refresh + 5 * DAY)
    per_day = {k: n / 5 for k, n in Counter(e["kind"] for e in world.truth()).items()}
    assert 5 <= per_day["new_item"] <= 60
    assert 0 < per_day.get("stopped", 0) + per_day.get("resumed", 0) <= 30
    assert 0 < per_day.get("pinned", 0) <= 20


def test_an_item_changes_at_most_once_per_refresh() -> None:
    """A refresh never both stops (or resumes) and pins or unpins one item: a client seeing
    one moved ``updatedAt`` could not tell which changes happened."""
    busy = WorldParams(
        shops=6, creators=4, items=300, stop_rate=0.3, resume_rate=0.3, pin_rate=0.5, unpin_rate=0.5
    )
    world = World(11, busy)
    world.advance_to(world.last_refresh + 20 * DAY)
    events = Counter(
        (c["at"], c["itemId"])
        for c in world.truth()
        if c["kind"] in {"stopped", "resumed", "pinned", "unpinned", "removed", "restored"}
    )
    assert events, "the rates make plenty of changes"
    assert max(events.values()) == 1


def test_profile_rolls_multiply_a_profiles_pace() -> None:
    """k rolls a refresh give about k times the new items and pins of one roll, and still
    change an item at most once per refresh."""
    one = World(5, SMALL)
    many = World(
        5, WorldParams(shops=6, profiles_per_shop=2, creators=4, items=300, profile_rolls=8)
    )
    for world in (one, many):
        world.advance_to(world.last_refresh + 10 * DAY)
    counts = [Counter(e["kind"] for e in w.truth()) for w in (one, many)]
    assert 4 * counts[0]["new_item"] <= counts[1]["new_item"] <= 14 * counts[0]["new_item"]
    assert counts[1]["pinned"] > 2 * counts[0]["pinned"]
    changed = Counter(
        (c["at"], c["itemId"])
        for c in many.truth()
        if c["kind"] in {"stopped", "resumed", "pinned", "unpinned", "removed", "restored"}
    )
    assert max(changed.values()) == 1
    pins = Counter(i.profile.handle for i in many.items.values() if i.is_pinned and i.in_index)
    assert max(pins.values()) <= many.params.max_pins


def test_the_large_world_has_big_scopes_at_the_default_pace() -> None:
    """WorldParams.large: shops of hundreds of items, new items and pins at the default
    world's rate per item (within a third over 5 refreshes; over 10, both make about 0.8 %
    and 0.15 % a refresh)."""
    worlds = {"default": World(1, WorldParams()), "large": World(1, WorldParams.large())}
    rates = {}
    for name, world in worlds.items():
        size = sum(1 for item in world.items.values() if item.in_index)
        world.advance_to(world.last_refresh + 5 * DAY)
        kinds = Counter(e["kind"] for e in world.truth())
        rates[name] = {k: kinds[k] / size for k in ("new_item", "pinned")}
    big = sorted(len(items) for items in worlds["large"].items_by_shop.values())
    assert sum(300 <= n <= 1000 for n in big) >= 6
    for kind in ("new_item", "pinned"):
        assert 0.67 <= rates["large"][kind] / rates["default"][kind] <= 1.5, (kind, rates)


def test_publish_resolution_rounds_published_at_down() -> None:
    """publishedAt is a multiple of the resolution, never after indexedAt; ids stay unique
    and still sort by it, and many items share a publishedAt."""
    world = World(3, WorldParams(shops=6, creators=4, items=300, publish_resolution=3600))
    world.advance_to(world.last_refresh + 2 * DAY)
    items = [i for i in world.items.values() if i.in_index]
    assert all(i.published_at.timestamp() % 3600 == 0 for i in items)
    assert all(i.published_at <= i.indexed_at for i in items)
    assert len({i.published_at for i in items}) < len(items)
    ordered = sorted(items, key=lambda i: i.tiktok_id)
    assert [i.published_at for i in ordered] == sorted(i.published_at for i in items)
