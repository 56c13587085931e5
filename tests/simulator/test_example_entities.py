"""Every seeded world holds the spec's example entities, so the shipped watches.yaml works.

Checked over HTTP like a client sees them: the Acme shop route, ``@rivalbrand``,
``#creatine``, the gummies captions and the skincare ads a rank-tracking query follows;
and in the pure world: they are deterministic, leave the seed's other records alone and
evolve at refreshes like everything else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from watcher.simulator.clock import DAY
from watcher.simulator.examples import ACME_SHOP_ID, EXAMPLE_SHOPS, RIVAL_HANDLE
from watcher.simulator.params import WorldParams
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.simulator.world import World

from .conftest import SMALL, client_for

LIST = "/v1/tiktok/library"
QUERY = "/v1/tiktok/library/query"
SKINCARE_BODY = {
    "search": ["skincare"],
    "type": "ad",
    "status": "active",
    "minViews": 100000,
    "sortBy": "views",
}


@pytest.fixture(
    scope="module",
    params=[(1, WorldParams()), (3, SMALL)],
    ids=["seed1-default", "seed3-small"],
)
def api(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A client of a simulator: the default world ``watcher simulate`` serves, and a small one."""
    seed, params = request.param
    with (
        running_simulator(seed=seed, params=params, rate_limit=100_000, credits=10**9) as sim,
        client_for(sim) as client,
    ):
        yield client


def _rows(response: httpx.Response) -> list[dict[str, object]]:
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert isinstance(data, list)
    return data


def test_acme_shop_route_serves_its_ads_and_videos(api: httpx.Client) -> None:
    """The spec's shop id is a real shop: Acme, with ads and organic videos."""
    path = f"/v1/shops/{ACME_SHOP_ID}/tiktok/library"
    rows = _rows(api.get(path, params={"limit": 50}))
    assert len(rows) >= 20
    shops = {(row["shop"]["id"], row["shop"]["domain"], row["shop"]["name"]) for row in rows}  # type: ignore[index]
    assert shops == {(ACME_SHOP_ID, "acme-nutrition.com", "Acme")}
    assert {row["type"] for row in rows} == {"ad", "organic"}
    ads = _rows(api.get(path, params={"type": "ad", "limit": 50}))
    assert len(ads) >= 10
    assert all(row["type"] == "ad" for row in ads)


def test_profile_search_finds_rivalbrand_by_exact_handle(api: httpx.Client) -> None:
    """``@rivalbrand`` is a shop's profile with ads and pins; a look-alike handle exists too."""
    params: dict[str, str | int] = {"search": RIVAL_HANDLE, "searchArea": "profile", "limit": 50}
    rows = _rows(api.get(LIST, params=params))
    handles = Counter(str(row["profile"]["handle"]) for row in rows)  # type: ignore[index]
    assert handles[RIVAL_HANDLE] >= 10
    assert len(handles) > 1, "a look-alike handle keeps exact matching honest"
    own = [row for row in rows if row["profile"]["handle"] == RIVAL_HANDLE]  # type: ignore[index]
    assert any(row["type"] == "ad" for row in own)
    assert all(row["shop"] is not None for row in own)
    assert own[0]["profile"]["accountType"] == "business"  # type: ignore[index]
    pinned = _rows(api.get(LIST, params={**params, "pinned": "yes"}))
    assert any(row["profile"]["handle"] == RIVAL_HANDLE for row in pinned)  # type: ignore[index]


def test_hashtag_search_finds_creatine_items_over_10k_views(api: httpx.Client) -> None:
    """``#creatine`` tags plenty of items, a good number of them over 10,000 views."""
    rows = _rows(api.get(LIST, params={"search": "#creatine", "searchArea": "hashtag"}))
    assert rows
    assert all("creatine" in row["content"]["hashtags"] for row in rows)  # type: ignore[index]
    body = {"search": ["creatine"], "searchArea": "hashtag", "minViews": 10000, "limit": 50}
    response = api.post(QUERY, json=body)
    viewed = _rows(response)
    assert response.json()["pagination"]["total"] >= 10
    assert all(row["metrics"]["views"] >= 10000 for row in viewed)  # type: ignore[index]


def test_captions_mention_the_gummies(api: httpx.Client) -> None:
    """Captions say "protein gummies" and "creatine gummies", both."""
    for phrase in ("protein gummies", "creatine gummies"):
        rows = _rows(api.get(LIST, params={"search": phrase, "searchArea": "caption"}))
        assert len(rows) >= 3, phrase
        assert all(phrase in str(row["content"]["description"]).lower() for row in rows)  # type: ignore[index]


def test_skincare_query_fills_a_rank_tracking_set(api: httpx.Client) -> None:
    """The spec's skincare query returns at least 25 active ads over 100k views."""
    response = api.post(QUERY, json={**SKINCARE_BODY, "limit": 50})
    rows = _rows(response)
    assert response.json()["pagination"]["total"] >= 25
    assert len(rows) >= 25
    for row in rows:
        assert (row["type"], row["status"]) == ("ad", "active")
        assert row["metrics"]["views"] > 100_000  # type: ignore[index]
    views = [row["metrics"]["views"] for row in rows]  # type: ignore[index]
    assert views == sorted(views, reverse=True)


def test_examples_are_deterministic_and_leave_the_rest_alone() -> None:
    """Same seed, same example records; the seed's random shops come first, unchanged."""
    a, b = World(8, SMALL), World(8, SMALL)
    assert list(a.shops) == list(b.shops)
    assert [p.handle for p in a.profiles.values()] == [p.handle for p in b.profiles.values()]
    assert list(a.items) == list(b.items)
    names = [shop.name for shop in a.shops.values()]
    assert names[-len(EXAMPLE_SHOPS) :] == [spec.name for spec in EXAMPLE_SHOPS]
    assert len(names) == SMALL.shops + len(EXAMPLE_SHOPS)
    other = World(9, SMALL)
    assert ACME_SHOP_ID in a.shops
    assert ACME_SHOP_ID in other.shops
    rival = {s.id for s in a.shops.values() if s.name == "RivalBrand"}
    assert rival.isdisjoint(other.shops), "other ids are drawn from the seed"


def test_examples_evolve_like_the_rest() -> None:
    """Over a month the example profiles post new items, get pins, and ads stop."""
    world = World(1, SMALL)
    world.advance_to(world.last_refresh + 30 * DAY)
    handles = {handle for spec in EXAMPLE_SHOPS for handle, _ in spec.profiles}
    kinds = Counter(str(c["kind"]) for c in world.truth() if c["handle"] in handles)
    assert kinds["new_item"] >= 5
    assert kinds["pinned"] >= 1
    assert kinds["stopped"] + kinds["resumed"] >= 1


def test_shipped_world_serves_acme_over_time(sim: SimHandle) -> None:
    """After refreshes the Acme shop route still answers (fixed id, any seed)."""
    sim.advance_days(2)
    with client_for(sim) as client:
        assert _rows(client.get(f"/v1/shops/{ACME_SHOP_ID}/tiktok/library"))
