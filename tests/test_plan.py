"""The pure polling plan: scopes per target, client-side rules, paging maths, estimates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watcher import plan
from watcher.config import Watch, parse_settings
from watcher.models import EventKind, ItemStatus, ItemType
from watcher.trendtrack import ListParams, QueryBody

CONFIG = """
version: 1
api: {api_key: k}
notifiers: {n: {urls: ["json://localhost/"]}}
defaults: {notify: [n]}
watches:
  - {name: shop, shop: 3f8aa146-6f96-46e8-9781-64db5166f9a8, type: ad}
  - {name: tag, hashtag: "#creatine", min_views: 10000}
  - {name: who, handle: "@RivalBrand", events: [pinned, unpinned]}
  - {name: words, search: ["protein gummies", "creatine"], search_area: caption,
     keyword_mode: all}
  - name: movers
    query: {search: [skincare], type: ad, status: active, minViews: 100000, sortBy: views}
    events: [rank_jump]
    rank_jump: {min_climb: 20, track: 25}
"""


@pytest.fixture(scope="module")
def watches() -> dict[str, Watch]:
    settings = parse_settings(CONFIG, "watches.yaml", env={})
    return {w.name: w for w in settings.watches}


def test_shop_feed_uses_the_shop_route_with_the_type(watches: dict[str, Watch]) -> None:
    """A shop watch reads the shop route, with its type filter server-side."""
    scope = plan.feed_scope(watches["shop"])
    assert scope.shop_id == "3f8aa146-6f96-46e8-9781-64db5166f9a8"
    assert isinstance(scope.params, ListParams)
    assert scope.params.type == "ad"


def test_hashtag_and_handle_feeds_search_their_area(watches: dict[str, Watch]) -> None:
    """Hashtags and handles are searched in their own search area, without @ or #."""
    tag = plan.feed_scope(watches["tag"]).params
    who = plan.feed_scope(watches["who"]).params
    assert (tag.search, tag.search_area) == (("creatine",), "hashtag")
    assert (who.search, who.search_area) == (("rivalbrand",), "profile")


def test_search_uses_the_documented_body(watches: dict[str, Watch]) -> None:
    """keywordMode is documented on the POST body only, so searches are POSTed."""
    body = plan.feed_scope(watches["words"]).params
    assert isinstance(body, QueryBody)
    assert body.to_json() == {
        "search": ["protein gummies", "creatine"],
        "keywordMode": "all",
        "searchArea": "caption",
    }


def test_query_feed_drops_status_and_metric_filters(watches: dict[str, Watch]) -> None:
    """The feed of a raw query keeps items crossing status/minViews visible."""
    body = plan.feed_scope(watches["movers"]).params.to_json()
    assert body == {"search": ["skincare"], "type": "ad"}


def test_tracked_set_is_the_most_viewed_active_items(watches: dict[str, Watch]) -> None:
    """rank_jump reads the `track` most-viewed active items of the query, once."""
    body = plan.tracked_scope(watches["movers"]).params.to_json()
    assert body["sortBy"] == "views"
    assert body["order"] == "desc"
    assert body["status"] == "active"
    assert body["minViews"] == 100000
    assert body["limit"] == 25


def test_rules_apply_client_side_filters(watches: dict[str, Watch]) -> None:
    """Rules carry the filters the route lacks: views, status, exact handle."""
    movers = plan.rules_for(watches["movers"])
    assert (movers.min_views, movers.status, movers.type) == (
        100000,
        ItemStatus.ACTIVE,
        ItemType.AD,
    )
    assert plan.rules_for(watches["who"]).handle == "rivalbrand"
    assert plan.rules_for(watches["tag"]).min_views == 10000


def test_rank_only_watch_needs_no_feed(watches: dict[str, Watch]) -> None:
    """A watch that only wants rank jumps never pays for the change feed."""
    assert not plan.needs_feed(watches["movers"])
    assert plan.needs_tracked(watches["movers"])
    assert plan.needs_feed(watches["shop"])
    assert not plan.needs_tracked(watches["shop"])


def test_aligned_pages_cover_every_offset_once() -> None:
    """From any offset the scan reaches, pages read the next rows with no gap or overlap."""
    covered: list[int] = []
    offset = 0
    limits = []
    while offset < 300:
        page, limit = plan.aligned_page(offset)
        rows = list(range((page - 1) * limit, page * limit))
        assert rows[0] == offset
        covered.extend(rows)
        limits.append(limit)
        offset += limit
    assert covered == list(range(len(covered)))
    assert limits[:7] == [1, 1, 2, 4, 8, 16, 32]
    assert set(limits[7:]) == {32}


def test_aligned_pages_shrink_to_the_budget_and_stay_aligned() -> None:
    """A small budget left in the poll shrinks the page, never breaking alignment."""
    assert plan.aligned_page(32, budget=7) == (9, 4)
    assert plan.aligned_page(64, budget=32) == (3, 32)
    assert plan.aligned_page(48, budget=100) == (4, 16)
    page, limit = plan.aligned_page(96, budget=1)
    assert (page - 1) * limit == 96
    assert limit == 1


def test_feed_limit_respects_the_cap(watches: dict[str, Watch]) -> None:
    """A small max_credits_per_poll shrinks the feed page so one page fits the cap."""
    assert plan.feed_limit(watches["shop"]) == 50
    assert plan.feed_limit(replace(watches["shop"], max_credits_per_poll=7)) == 7


def test_estimate_does_not_grow_with_poll_frequency(watches: dict[str, Watch]) -> None:
    """Polls between refreshes are free: 96 polls a day cost what one does."""
    hourly = plan.estimate(watches["shop"], 24)
    often = plan.estimate(watches["shop"], 96)
    assert hourly.per_day == often.per_day
    movers = plan.estimate(watches["movers"], 24)
    assert movers.per_day == 25
    assert movers.per_month == 750


def test_month_forecast_is_linear() -> None:
    """Half the month gone with 5,000 spent forecasts 10,000."""
    start = datetime(2026, 4, 1, tzinfo=UTC)
    assert plan.month_forecast(5000, start + timedelta(days=15), start, 30) == 10000


def test_feed_kinds_exclude_rank() -> None:
    """rank_jump and the baseline summary never come from the change feed."""
    assert EventKind.RANK_JUMP not in plan.FEED_KINDS
    assert EventKind.NEW_AD in plan.FEED_KINDS


@pytest.mark.parametrize(
    ("name", "updated_after", "moves", "expected"),
    [
        ("tag", None, None, "change feed (updatedAfter) if accepted, else stored newest order"),
        ("tag", True, None, "change feed (updatedAfter)"),
        ("tag", False, False, "updatedAt scan down to the watermark (updatedAt exact here)"),
        (
            "tag",
            False,
            True,
            "stored newest order: free counts + probes (updatedAt moves on metrics)",
        ),
        (
            "tag",
            False,
            None,
            "stored newest order: free counts + probes (updatedAt not learned yet)",
        ),
        ("movers", True, None, "tracked set (25 rows)"),
    ],
)
def test_strategy_says_how_a_watch_reads(
    watches: dict[str, Watch],
    name: str,
    updated_after: bool | None,
    moves: bool | None,
    expected: str,
) -> None:
    """The reading strategy follows what was learned of the API and of each scope."""
    assert plan.strategy(watches[name], updated_after, moves=moves) == expected


def test_an_inexact_updated_at_reads_the_stored_order(watches: dict[str, Watch]) -> None:
    """exact=False (updatedAt seen moving on metrics) is the same as moves=True."""
    text = plan.strategy(watches["tag"], False, exact=False)
    assert text == "stored newest order: free counts + probes (updatedAt moves on metrics)"


def _one_watch(entry: str) -> Watch:
    config = f"""
version: 1
api: {{api_key: k}}
notifiers: {{n: {{urls: ["json://localhost/"]}}}}
defaults: {{notify: [n]}}
watches:
  - {entry}
"""
    return parse_settings(config, "watches.yaml", env={}).watches[0]


def test_the_active_ads_list_keeps_the_scopes_type() -> None:
    """A scope of organic videos, by the watch's type or its raw query's, has no active-ads
    list: reading ads there would fill its stored order with rows outside the scope."""
    organic = _one_watch('{name: q, query: {search: ["gummies"], type: organic}}')
    assert plan.active_scope(organic) is None
    assert plan.active_scope(_one_watch("{name: v, hashtag: creatine, type: organic}")) is None
    ads = plan.active_scope(_one_watch("{name: a, hashtag: creatine}"))
    assert ads is not None
    assert (str(ads.params.status), str(ads.params.type)) == ("active", "ad")


def test_a_shop_lists_its_pins_through_its_profiles_handles() -> None:
    """The shop route has no pinned filter: its known handles are searched in a body."""
    shop = _one_watch("{name: s, shop: 3f8aa146-6f96-46e8-9781-64db5166f9a8}")
    assert plan.pinned_scope(shop) is None
    scope = plan.pinned_scope(shop, {"@acme", "acme_eu"})
    assert scope is not None
    body = scope.params.to_json()  # type: ignore[union-attr]
    assert (body["search"], body["searchArea"], body["pinned"]) == (
        ["acme", "acme_eu"],
        "profile",
        "yes",
    )
