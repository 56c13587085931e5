"""Helpers for end-to-end tests against the simulator: configs and expected events.

The simulator's truth log says exactly what changed in the world; ``expected_events``
turns it into the events a watch must report, so tests compare alerts with the truth.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from watcher.simulator.testing import SimHandle

ITEM_EVENTS = "[new_ad, new_video, pinned, unpinned, ad_stopped, ad_resumed]"


@dataclass(frozen=True)
class Target:
    """A watch's target as the test sees it: which truth entries fall in its scope."""

    name: str
    kind: str  # shop | handle | hashtag
    value: str

    def yaml(self) -> str:
        value = f'"{self.value}"'
        return f"  - {{name: {self.name}, {self.kind}: {value}}}"

    def covers(self, change: Mapping[str, object]) -> bool:
        if self.kind == "shop":
            return change.get("shopId") == self.value
        if self.kind == "handle":
            handle = str(change.get("handle") or "").lstrip("@").lower()
            return handle == self.value.lstrip("@").lower()
        tags = change.get("hashtags") or []
        assert isinstance(tags, list)
        return self.value in tags


def config(
    sim: SimHandle,
    db: Path,
    targets: Sequence[Target],
    *,
    notify_url: str = "json://127.0.0.1:9/",
    extra: str = "",
) -> str:
    """A watches.yaml polling ``targets`` on the simulator, all item events on."""
    lines = [
        "version: 1",
        f'api: {{base_url: "{sim.base_url}", api_key: "{sim.api_key}",'
        " max_requests_per_minute: 600}",
        f'state: {{database: "sqlite:///{db}"}}',
        f'notifiers: {{hook: {{urls: ["{notify_url}"]}}}}',
        f"defaults: {{notify: [hook], every: 1h, events: {ITEM_EVENTS}}}",
        extra,
        "watches:",
        *(t.yaml() for t in targets),
    ]
    return "\n".join(line for line in lines if line) + "\n"


_KIND = {
    "pinned": "pinned",
    "unpinned": "unpinned",
    "stopped": "ad_stopped",
    "resumed": "ad_resumed",
}


def expected_events(
    truth: Iterable[Mapping[str, object]], targets: Sequence[Target]
) -> Counter[tuple[str, str, str]]:
    """(watch, kind, item id) of every event the truth log says must be reported, counted
    (an ad that stops, resumes and stops again must be reported stopped twice)."""
    out: Counter[tuple[str, str, str]] = Counter()
    for change in truth:
        kind = str(change["kind"])
        if kind == "new_item":
            event = "new_ad" if change.get("type") == "ad" else "new_video"
        elif kind in _KIND:
            event = _KIND[kind]
            if kind in {"stopped", "resumed"} and change.get("type") != "ad":
                continue
        else:
            continue
        for target in targets:
            if target.covers(change):
                out[(target.name, event, str(change["itemId"]))] += 1
    return out


def busiest(world: Mapping[str, object], key: str, count: int) -> list[Mapping[str, object]]:
    """The first ``count`` entries of a world list (the world is deterministic per seed)."""
    entries = world[key]
    assert isinstance(entries, list)
    return entries[:count]


def changed_rows(truth: Iterable[Mapping[str, object]], targets: Sequence[Target]) -> int:
    """The credit lower bound of a refresh: per watch, the distinct rows that changed in
    its scope in a way the change feed reports (not rank moves, not removals)."""
    rows: set[tuple[str, str]] = set()
    for change in truth:
        if change["kind"] in {"rank", "removed"}:
            continue
        for target in targets:
            if target.covers(change):
                rows.add((target.name, str(change["itemId"])))
    return len(rows)


@dataclass(frozen=True)
class WorldLists:
    """What ``/_sim/world`` lists: its shops, profiles and hashtags."""

    shops: list[dict[str, object]]
    profiles: list[dict[str, object]]
    hashtags: list[str]


def world_lists(sim: SimHandle) -> WorldLists:
    """The simulator's shops, profiles and hashtags, checked to be lists."""
    world = sim.world()
    shops, profiles, tags = world["shops"], world["profiles"], world["hashtags"]
    assert isinstance(shops, list)
    assert isinstance(profiles, list)
    assert isinstance(tags, list)
    return WorldLists(shops, profiles, [str(t) for t in tags])


def items_of(sim: SimHandle, handle: str, key: str) -> list[dict[str, object]]:
    """A profile's items, read with ``key`` (a setup key: the watcher's credits stay its
    own)."""
    response = httpx.get(
        f"{sim.base_url}/v1/tiktok/library",
        params={"search": handle, "searchArea": "profile", "limit": 50},
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()
    data = response.json()["data"]
    assert isinstance(data, list)
    return [d for d in data if str(d["profile"]["handle"]).lstrip("@") == handle.lstrip("@")]
