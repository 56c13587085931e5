"""The reference workload: watches of every target kind over the simulator's default world.

Targets are picked from the world deterministically (every k-th shop, profile, hashtag and
keyword), never by how busy they are, so the workload is not tuned to any strategy. Every
watch is a ``WatchSpec``: what ``watches.yaml`` says, and the exact scope the world uses to
decide which truth-log entries concern it (the ``Oracle``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watcher.simulator.query import ListQuery, select
from watcher.simulator.world import World

PER_KIND = 20
RANK_WATCHES = 8
"""Of the ``query`` watches, how many follow ``rank_jump`` (the rest: item events)."""
MIN_CLIMB = 20
TRACK = 25
ITEM_EVENTS = ("new_ad", "new_video", "pinned", "unpinned", "ad_stopped", "ad_resumed")


@dataclass(frozen=True)
class WatchSpec:
    """One watch: its YAML entry and the scope it covers in the simulated world."""

    name: str
    kind: str  # shop | handle | hashtag | search | query
    entry: Mapping[str, object]
    query: ListQuery
    shop_id: str | None = None
    handle: str | None = None
    rank: bool = False
    naive_body: Mapping[str, object] = field(default_factory=dict)
    """What a generic poller requests for it (the same scope, first page of newest)."""

    def yaml(self) -> str:
        return f"  - {json.dumps({'name': self.name, **self.entry})}"


def _every(seq: Sequence[object], count: int) -> list[object]:
    step = max(1, len(seq) // count)
    return list(seq[::step])[:count]


def build(world: Mapping[str, object], per_kind: int = PER_KIND) -> list[WatchSpec]:
    """``per_kind`` watches of each target kind from the simulator's ``/_sim/world``."""
    shops = world["shops"]
    profiles = world["profiles"]
    hashtags = world["hashtags"]
    keywords = world["keywords"]
    assert isinstance(shops, list)
    assert isinstance(profiles, list)
    assert isinstance(hashtags, list)
    assert isinstance(keywords, list)
    specs: list[WatchSpec] = []
    for n, shop in enumerate(_every(shops, per_kind)):
        assert isinstance(shop, dict)
        shop_id = str(shop["id"])
        specs.append(WatchSpec(f"shop{n}", "shop", {"shop": shop_id}, ListQuery(), shop_id=shop_id))
    for n, profile in enumerate(_every(profiles, per_kind)):
        assert isinstance(profile, dict)
        handle = str(profile["handle"])
        specs.append(
            WatchSpec(
                f"handle{n}",
                "handle",
                {"handle": f"@{handle}"},
                ListQuery(search=(handle,), search_area="profile"),
                handle=handle.lower(),
                naive_body={"search": [handle], "searchArea": "profile"},
            )
        )
    for n, raw_tag in enumerate(_every(hashtags, per_kind)):
        tag = str(raw_tag)
        specs.append(
            WatchSpec(
                f"tag{n}",
                "hashtag",
                {"hashtag": tag},
                ListQuery(search=(tag,), search_area="hashtag"),
                naive_body={"search": [tag], "searchArea": "hashtag"},
            )
        )
    words = [str(k) for k in keywords]
    for n in range(per_kind):
        area = ("caption", "all")[n % 2]
        pair = n % 4 == 3
        values = (
            (words[n % len(words)], words[(n + 7) % len(words)])
            if pair
            else (words[n % len(words)],)
        )
        specs.append(
            WatchSpec(
                f"search{n}",
                "search",
                {"search": list(values), "search_area": area, "keyword_mode": "any"},
                ListQuery(search=values, search_area=area),
                naive_body={"search": list(values), "searchArea": area, "keywordMode": "any"},
            )
        )
    for n in range(per_kind):
        word = words[(n * 3 + 1) % len(words)]
        if n < RANK_WATCHES:
            body: dict[str, object] = {
                "search": [word],
                "searchArea": "caption",
                "type": "ad",
                "status": "active",
                "sortBy": "views",
            }
            specs.append(
                WatchSpec(
                    f"rank{n}",
                    "query",
                    {
                        "query": body,
                        "events": ["rank_jump"],
                        "rank_jump": {"min_climb": MIN_CLIMB, "track": TRACK},
                    },
                    ListQuery(
                        search=(word,),
                        search_area="caption",
                        type="ad",
                        status="active",
                        sort_by="views",
                    ),
                    rank=True,
                    naive_body=body,
                )
            )
            continue
        kind = ("ad", "organic")[n % 2]
        body = {"search": [word], "searchArea": "all", "type": kind}
        specs.append(
            WatchSpec(
                f"query{n}",
                "query",
                {"query": body},
                ListQuery(search=(word,), search_area="all", type=kind),
                naive_body=body,
            )
        )
    return specs


def config_yaml(
    base_url: str,
    api_key: str,
    db: Path,
    specs: Sequence[WatchSpec],
    *,
    notify_url: str = "json://127.0.0.1:9/",
    every: str = "6h",
    max_requests_per_minute: int = 1_000_000,
    concurrency: int = 8,
) -> str:
    """A watches.yaml for ``specs`` on the simulator, all item events on by default."""
    lines = [
        "version: 1",
        f'api: {{base_url: "{base_url}", api_key: "{api_key}",'
        f" max_requests_per_minute: {max_requests_per_minute},"
        f" max_concurrency: {concurrency}}}",
        f'state: {{database: "sqlite:///{db}"}}',
        f'notifiers: {{hook: {{urls: ["{notify_url}"]}}}}',
        f"defaults: {{notify: [hook], every: {every}, events: [{', '.join(ITEM_EVENTS)}]}}",
        "watches:",
        *(s.yaml() for s in specs),
    ]
    return "\n".join(lines) + "\n"


class Oracle:
    """Answers scope questions from the world's twin (``bench.sim.twin``)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def scope(self, spec: WatchSpec) -> set[str]:
        """Ids of the items in the watch's scope now (the product's semantics)."""
        query = ListQuery(
            search=spec.query.search,
            search_area=spec.query.search_area,
            keyword_mode=spec.query.keyword_mode,
            type=spec.query.type,
            status=spec.query.status,
            limit=10**9,
        )
        items, _ = select(self.world, query, spec.shop_id)
        if spec.handle is not None:
            items = [i for i in items if i.profile.handle.lower() == spec.handle]
        return {i.id for i in items}

    def served(self, spec: WatchSpec) -> int:
        """How many rows the watch's scope serves now (its request's ``pagination.total``,
        before watcher's client-side filters): what one full reread of it costs."""
        query = ListQuery(
            search=spec.query.search,
            search_area=spec.query.search_area,
            keyword_mode=spec.query.keyword_mode,
            type=spec.query.type,
            status=spec.query.status,
            limit=1,
        )
        return select(self.world, query, spec.shop_id)[1]

    def tracked(self, spec: WatchSpec) -> dict[str, int]:
        """The rank watch's tracked set now: its ``TRACK`` most-viewed active items."""
        query = ListQuery(
            search=spec.query.search,
            search_area=spec.query.search_area,
            type=spec.query.type,
            status="active",
            sort_by="views",
            order="desc",
            limit=TRACK,
        )
        items, _ = select(self.world, query, spec.shop_id)
        return {i.id: i.rank for i in items if i.rank is not None}
