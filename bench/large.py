"""The large-scope workload: watches whose scopes hold 300 to 1,000 items each.

The world is ``WorldParams.large()`` (big profiles at the default world's pace per item;
see its docstring). Candidates of each target kind are every shop, profile handle,
hashtag, keyword and keyword pair of that world; those whose served scope (what the
watch's request returns, before watcher's client-side filters) holds ``MIN_SCOPE`` to
``MAX_SCOPE`` items when the clock starts are kept, and ``PER_KIND`` of each kind are
taken at a fixed stride over them in name order, never by how busy they are. No rank
watches: a rank watch reads its tracked set, whatever the size of its scope.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.workload import Oracle, WatchSpec
from watcher.simulator.query import ListQuery
from watcher.simulator.vocab import NICHES
from watcher.simulator.world import World

MIN_SCOPE = 300
MAX_SCOPE = 1_000
PER_KIND = 4
MAX_CREDITS_PER_POLL = 1_000
"""Each watch's ``max_credits_per_poll``: a full reread of the largest scope fits one poll,
so the scan of today's documented-only mode is never cut (a cut one would lag, not
reread, and its misses would blame the cap)."""


def served(world: World, spec: WatchSpec) -> int:
    """How many rows the watch's scope serves now: what one full reread of it costs."""
    return Oracle(world).served(spec)


def _pick(
    world: World, candidates: Sequence[WatchSpec], per_kind: int, rename: Callable[[int], str]
) -> list[WatchSpec]:
    sized = [spec for spec in candidates if MIN_SCOPE <= served(world, spec) <= MAX_SCOPE]
    step = max(1, len(sized) // per_kind)
    picked = sized[::step][:per_kind]
    return [
        WatchSpec(
            rename(n),
            spec.kind,
            spec.entry,
            spec.query,
            shop_id=spec.shop_id,
            handle=spec.handle,
            naive_body=spec.naive_body,
        )
        for n, spec in enumerate(picked)
    ]


def build(world: World, per_kind: int = PER_KIND) -> list[WatchSpec]:
    """``per_kind`` watches of each kind (shop, handle, hashtag, search, query) on
    ``world`` (the served world's twin, as the clock starts)."""
    shops = [
        WatchSpec("", "shop", {"shop": shop.id}, ListQuery(), shop_id=shop.id)
        for shop in sorted(world.shops.values(), key=lambda s: s.name)
    ]
    handles = [
        WatchSpec(
            "",
            "handle",
            {"handle": f"@{handle}"},
            ListQuery(search=(handle,), search_area="profile"),
            handle=handle.lower(),
        )
        for handle in sorted(world.profiles)
    ]
    tags = [
        WatchSpec(
            "",
            "hashtag",
            {"hashtag": tag},
            ListQuery(search=(tag,), search_area="hashtag"),
        )
        for tag in sorted({tag for item in world.items.values() for tag in item.hashtags})
    ]
    words = sorted({product for niche in NICHES for product in niche.products})
    searches = [
        WatchSpec(
            "",
            "search",
            {"search": [word], "search_area": "all", "keyword_mode": "any"},
            ListQuery(search=(word,), search_area="all"),
        )
        for word in words
    ]
    # Two keywords of different niches, either matching: a raw query of a bigger scope.
    pairs = [(a, words[(n + 7) % len(words)]) for n, a in enumerate(words)]
    queries = [
        WatchSpec(
            "",
            "query",
            {"query": {"search": list(pair), "searchArea": "caption", "keywordMode": "any"}},
            ListQuery(search=pair, search_area="caption"),
        )
        for pair in pairs
    ]
    specs: list[WatchSpec] = []
    for kind, candidates in (
        ("shop", shops),
        ("handle", handles),
        ("tag", tags),
        ("search", searches),
        ("query", queries),
    ):
        specs += _pick(world, candidates, per_kind, lambda n, kind=kind: f"{kind}{n}")
    return specs
