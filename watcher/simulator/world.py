"""The simulated library: a seeded world that evolves at each daily refresh (pure).

``World`` owns every record. Time enters only through ``advance_to(now)``: each UTC
midnight passed is one refresh, where metrics grow, ranks move, ads stop and resume, pins
change, items arrive (some with indexing lag) or leave the index, and the changes staged
through ``stage`` land. Nothing changes between refreshes. Every change is appended to
the truth log, the ground truth that tests compare alerts against.

``updatedAt`` moves (to the refresh instant) when an item is first indexed or re-indexed,
its status changes, or it is pinned or unpinned; in documented-only mode every metric
update moves it too. ``createdAt`` is the first indexing, ``indexedAt`` the latest.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from random import Random

from watcher.simulator.changes import Change, Staged, parse_item_id, staged_change
from watcher.simulator.clock import DAY, SIM_START, iso, midnight_on_or_before
from watcher.simulator.entities import Json, Profile, Shop, SimItem, detail_extras, item_json
from watcher.simulator.examples import add_examples
from watcher.simulator.generate import Generator
from watcher.simulator.growth import assign_ranks, fit_gains, grow, rank_order, update_profiles
from watcher.simulator.ordering import sort_items
from watcher.simulator.params import WorldParams
from watcher.simulator.vocab import NICHES

RANK_DAYS = (3, 7, 14, 30)


class World:
    """Every shop, profile and item, the staged changes and the truth log."""

    def __init__(
        self,
        seed: int,
        params: WorldParams | None = None,
        *,
        start: datetime = SIM_START,
        documented_only: bool = False,
    ) -> None:
        self.params = params or WorldParams()
        self.seed = seed
        self.documented_only = documented_only
        self.rng = Random(seed)
        self.generator = Generator(self.rng, self.params)
        self.last_refresh = midnight_on_or_before(start)
        genesis = self.generator.genesis(self.last_refresh)
        add_examples(self.generator, genesis, self.last_refresh, seed)
        self.shops: dict[str, Shop] = {shop.id: shop for shop in genesis.shops}
        self.profiles: dict[str, Profile] = {p.handle: p for p in genesis.profiles}
        self.items: dict[int, SimItem] = {item.tiktok_id: item for item in genesis.items}
        self.items_by_shop: dict[str, list[SimItem]] = {shop_id: [] for shop_id in self.shops}
        for item in genesis.items:
            if item.shop:
                self.items_by_shop[item.shop.id].append(item)
        self.refreshes = 0
        self.version = 0
        self._staged: list[Staged] = []
        self._truth: list[Change] = []
        self._rank_days: deque[dict[int, int]] = deque(maxlen=max(RANK_DAYS) + 1)
        self._json_cache: dict[int, Json] = {}
        self._sorted_cache: dict[tuple[str, str], list[SimItem]] = {}
        self.search_cache: dict[tuple[str, str], tuple[int, frozenset[int]]] = {}
        """(area, keyword) -> (item count when computed, ids matching): text never changes."""
        self._warm_up()

    def _warm_up(self) -> None:
        """Grow the initial items and rank them on each of the last 30 days, so deltas exist.

        Each item's daily gains over the last 37 days are drawn once; each past day's
        ranking then orders items indexed by then by their seven-day sum ending that day.
        """
        days = max(RANK_DAYS)
        history: list[tuple[SimItem, list[int]]] = []
        for item in self.items.values():
            record: list[int] = []
            grow(item, self.last_refresh, self.rng, detailed_days=days + 7, record=record)
            sums = [0, *itertools.accumulate(record)]
            history.append((item, sums))
            item.in_index = True
        for days_ago in range(days, -1, -1):
            moment = self.last_refresh - DAY * days_ago
            standing = []
            for item, sums in history:
                if item.indexed_at <= moment:
                    end = len(sums) - 1 - days_ago
                    standing.append((sums[end] - sums[max(0, end - 7)], item.tiktok_id))
            standing.sort(reverse=True)
            ranks = {tiktok_id: n for n, (_, tiktok_id) in enumerate(standing, start=1)}
            self._rank_days.append(ranks)
        for item in self.items.values():
            item.rank = self._rank_days[-1][item.tiktok_id]
        update_profiles(self.profiles.values(), self.last_refresh, {})

    # time

    @property
    def next_refresh(self) -> datetime:
        """When the next refresh happens: the coming UTC midnight."""
        return self.last_refresh + DAY

    def advance_to(self, now: datetime) -> int:
        """Run every refresh due by ``now``; returns how many ran."""
        count = 0
        while self.next_refresh <= now:
            self._refresh(self.next_refresh)
            count += 1
        return count

    def _refresh(self, at: datetime) -> None:
        staged, self._staged = self._staged, []
        targeted = {change.item.tiktok_id for change in staged}
        gains: dict[int, int] = {}
        for item in self.items.values():
            if item.in_index:
                gains[item.tiktok_id] = grow(item, at, self.rng)
                self._tick_days(item, at)
                if self.documented_only:
                    item.updated_at = at
        self._evolve(at, targeted)
        forced: dict[int, int] = {}
        for change in staged:
            if change.kind == "rank" and change.rank is not None:
                forced[change.item.tiktok_id] = change.rank
            else:
                self._apply(change, at)
        self._rerank(at, forced)
        update_profiles(self.profiles.values(), at, gains)
        self.last_refresh = at
        self.refreshes += 1
        self.version += 1
        self._json_cache.clear()
        self._sorted_cache.clear()

    @staticmethod
    def _tick_days(item: SimItem, at: datetime) -> None:
        if item.type == "organic":
            item.days_running = max(0, (at - item.published_at).days)
        elif item.status == "active":
            item.days_running += 1

    # evolution

    def _evolve(self, at: datetime, targeted: set[int]) -> None:
        """The world's own changes at one refresh; staged targets are left alone.

        An item changes at most once per refresh (one status change, removal, restore,
        pin or unpin): two changes landing on one item at the same instant (a stop and an
        unpin, say) would leave ``updatedAt`` unable to tell a client which happened.
        """
        rng = self.rng
        params = self.params
        touched = set(targeted)
        for item in list(self.items.values()):
            if item.tiktok_id in targeted:
                continue
            roll = rng.random()
            if not item.in_index:
                if roll < params.restore_rate:
                    self._restore(item, at)
                    touched.add(item.tiktok_id)
            elif item.type == "ad" and item.status == "active" and roll < params.stop_rate:
                self._set_status(item, "inactive", at)
                touched.add(item.tiktok_id)
            elif item.type == "ad" and item.status == "inactive" and roll < params.resume_rate:
                self._set_status(item, "active", at)
                touched.add(item.tiktok_id)
            elif not item.is_pinned and rng.random() < params.remove_rate:
                self._remove(item, at)
        for profile in self.profiles.values():
            for _ in range(params.profile_rolls):
                self._pin_roll(profile, at, touched)
        for profile in self.profiles.values():
            rate = params.new_item_rate if profile.shop else params.creator_post_rate
            for _ in range(params.profile_rolls):
                if rng.random() < rate:
                    lag = self.generator.index_lag()
                    self._index_new(self.generator.item(profile, at - lag, at), at)

    def _pin_roll(self, profile: Profile, at: datetime, touched: set[int]) -> None:
        """One draw of a profile's unpin and pin chances; what it changes is ``touched``
        (with several draws a refresh, an item pinned by one is left alone by the next)."""
        rng = self.rng
        params = self.params
        visible = [i for i in profile.items if i.in_index and i.tiktok_id not in touched]
        pinned = [item for item in visible if item.is_pinned]
        roll = rng.random()
        if pinned and roll < params.unpin_rate:
            item = rng.choice(pinned)
            self._unpin(item, at)
            touched.add(item.tiktok_id)
        elif roll > 1.0 - params.pin_rate:
            recent = sorted(visible, key=lambda i: i.published_at)[-8:]
            candidates = [item for item in recent if not item.is_pinned]
            evicted = self._pin_evictions(profile)
            if candidates and not any(item.tiktok_id in touched for item in evicted):
                item = rng.choice(candidates)
                self._pin(item, at)
                touched.update(other.tiktok_id for other in (item, *evicted))

    def _apply(self, change: Staged, at: datetime) -> None:
        item = change.item
        if change.kind == "new_item":
            self._index_new(item, at)
        elif change.kind == "pin":
            self._pin(item, at)
        elif change.kind == "unpin":
            self._unpin(item, at)
        elif change.kind in ("stop", "resume"):
            self._set_status(item, "inactive" if change.kind == "stop" else "active", at)
        elif change.kind == "remove" and item.in_index:
            self._remove(item, at)

    def _index_new(self, item: SimItem, at: datetime) -> None:
        item.in_index = True
        grow(item, at, self.rng)
        item.days_running = max(0, (at - item.published_at).days)
        self.items[item.tiktok_id] = item
        item.profile.items.append(item)
        if item.shop:
            self.items_by_shop[item.shop.id].append(item)
        self._log(at, "new_item", item, None, item.status)

    def _restore(self, item: SimItem, at: datetime) -> None:
        item.in_index = True
        item.indexed_at = item.updated_at = at
        grow(item, at, self.rng)
        self._log(at, "restored", item, None, item.status)

    def _remove(self, item: SimItem, at: datetime) -> None:
        item.in_index = False
        item.rank = None
        self._log(at, "removed", item, item.status, None)

    def _set_status(self, item: SimItem, status: str, at: datetime) -> None:
        if item.status == status or item.type != "ad":
            return
        before, item.status, item.updated_at = item.status, status, at
        self._log(at, "stopped" if status == "inactive" else "resumed", item, before, status)

    def _pin_evictions(self, profile: Profile) -> list[SimItem]:
        """The pins a new pin of ``profile`` pushes out: a profile keeps ``max_pins``."""
        pinned = [other for other in profile.items if other.is_pinned]
        pinned.sort(key=lambda other: (other.last_pinned_at or other.indexed_at, other.tiktok_id))
        return pinned[: max(0, len(pinned) - self.params.max_pins + 1)]

    def _pin(self, item: SimItem, at: datetime) -> None:
        """Pin ``item``; a profile keeps at most ``max_pins``, so the oldest pin goes."""
        if item.is_pinned:
            return
        for evicted in self._pin_evictions(item.profile):
            self._unpin(evicted, at)
        item.is_pinned = True
        item.first_pinned_at = item.first_pinned_at or at
        item.last_pinned_at = item.updated_at = at
        self._log(at, "pinned", item, False, True)

    def _unpin(self, item: SimItem, at: datetime) -> None:
        if not item.is_pinned:
            return
        item.is_pinned = False
        item.last_unpinned_at = item.updated_at = at
        self._log(at, "unpinned", item, True, False)

    def _rerank(self, at: datetime, forced: Mapping[int, int]) -> None:
        """Rank every indexed item, place staged ranks, log every move of 10+ places."""
        order = rank_order(item for item in self.items.values() if item.in_index)
        for tiktok_id, wanted in forced.items():
            item = self.items[tiktok_id]
            if item.in_index:
                order.remove(item)
                position = min(max(wanted, 1), len(order) + 1) - 1
                order.insert(position, item)
                fit_gains(item, order, position)
        before = self._rank_days[-1]
        ranks = assign_ranks(order)
        self._rank_days.append(ranks)
        threshold = self.params.rank_log_threshold
        for item in order:
            old = before.get(item.tiktok_id)
            new = ranks[item.tiktok_id]
            if old is not None and (item.tiktok_id in forced or abs(old - new) >= threshold):
                self._log(at, "rank", item, old, new)

    # truth

    def _log(self, at: datetime, kind: str, item: SimItem, before: object, after: object) -> None:
        self._truth.append(Change(at, kind, item, before, after))

    def truth(self, since: datetime | None = None) -> list[Json]:
        """Every logged change strictly after ``since`` (all when None), oldest first."""
        start = 0
        if since is not None:
            start = bisect.bisect_right(self._truth, since, key=lambda change: change.at)
        stamps: dict[datetime, str] = {}
        entries: list[Json] = []
        for change in self._truth[start:]:
            at = stamps.get(change.at) or stamps.setdefault(change.at, iso(change.at))
            entries.append(change.to_json(at))
        return entries

    # staging

    def find(self, ident: str) -> SimItem | None:
        """Any known item (indexed or not) by composite or bare id."""
        tiktok_id = parse_item_id(ident)
        return self.items.get(tiktok_id) if tiktok_id is not None else None

    def stage(self, kind: str, fields: Mapping[str, object]) -> str:
        """Queue a change for the next refresh; returns the item id it concerns.

        Raises ``StageError`` for an unknown kind, field, item, profile or shop.
        """
        change = staged_change(self, kind, fields)
        self._staged.append(change)
        return change.item.id

    # reading

    def indexed(self, ident: str) -> SimItem | None:
        """An item currently in the index, by composite or bare id."""
        item = self.find(ident)
        return item if item is not None and item.in_index else None

    def sorted_items(self, sort_by: str, descending: bool) -> list[SimItem]:
        """Indexed items in ``sort_by`` order, ties by id descending; cached per refresh."""
        cache_key = (sort_by, "desc" if descending else "asc")
        cached = self._sorted_cache.get(cache_key)
        if cached is None:
            cached = sort_items(
                (item for item in self.items.values() if item.in_index), sort_by, descending
            )
            self._sorted_cache[cache_key] = cached
        return cached

    def item_json(self, item: SimItem) -> Json:
        """The item as list routes serve it; cached until the next refresh (do not mutate)."""
        cached = self._json_cache.get(item.tiktok_id)
        if cached is None:
            deltas: dict[int, int | None] = {}
            for days in RANK_DAYS:
                past = (
                    self._rank_days[-1 - days].get(item.tiktok_id)
                    if len(self._rank_days) > days
                    else None
                )
                deltas[days] = past - item.rank if past is not None and item.rank else None
            cached = item_json(item, deltas, len(self._rank_days[-1]))
            self._json_cache[item.tiktok_id] = cached
        return cached

    def detail_json(self, item: SimItem) -> Json:
        """The item as the detail route serves it, with ``links`` and ``source``."""
        return {**self.item_json(item), **detail_extras(item)}

    def latest_ready_date(self) -> str:
        """The last day whose data is complete: the day before the latest refresh."""
        return (self.last_refresh - DAY).date().isoformat()

    def freshness(self, now: datetime) -> Json:
        """The ``data`` of ``/v1/system/freshness``."""
        return {
            "latestReadyDate": self.latest_ready_date(),
            "latestScheduledDate": self.last_refresh.date().isoformat(),
            "dataFreshnessLagDays": 1,
            "generatedAt": iso(now),
        }

    def summary(self, now: datetime) -> Json:
        """What ``GET /_sim/world`` shows: the names tests and demos pick from."""
        hashtags = sorted({tag for item in self.items.values() for tag in item.hashtags})
        return {
            "now": iso(now),
            "latestReadyDate": self.latest_ready_date(),
            "lastRefresh": iso(self.last_refresh),
            "nextRefresh": iso(self.next_refresh),
            "refreshes": self.refreshes,
            "seed": self.seed,
            "documentedOnly": self.documented_only,
            "itemCount": sum(1 for item in self.items.values() if item.in_index),
            "shops": [
                {"id": s.id, "domain": s.domain, "name": s.name} for s in self.shops.values()
            ],
            "profiles": [
                {"handle": p.handle, "name": p.name, "shopId": p.shop.id if p.shop else None}
                for p in self.profiles.values()
            ],
            "hashtags": hashtags,
            "keywords": sorted({product for niche in NICHES for product in niche.products}),
        }
