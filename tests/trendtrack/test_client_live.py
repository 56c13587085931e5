"""The client against the bundled simulator over real HTTP (loopback, fast injected sleep)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.trendtrack.fakes import Sleeps
from watcher.errors import ApiUnavailable, AuthError, NotFound, ValidationFailed
from watcher.simulator.testing import running_simulator
from watcher.trendtrack import ListParams, QueryBody
from watcher.trendtrack.client import TrendTrackClient


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with running_simulator(seed=1) as handle:
        yield handle


@pytest.fixture
async def live(sim: Any, sleeps: Sleeps) -> AsyncIterator[TrendTrackClient]:
    async with TrendTrackClient(sim.base_url, sim.api_key, sleep=sleeps, max_retries=2) as c:
        yield c


async def test_list_costs_one_credit_per_row(live: TrendTrackClient) -> None:
    """A list page returns validated items and the meter counts one credit per row."""
    page = await live.list_library(ListParams(limit=5))
    assert len(page.items) == 5
    assert page.skipped == 0
    assert page.total is not None
    assert page.total > 5
    assert page.credits_used == 5
    assert live.meter.total_used == 5
    assert live.meter.balance is not None


async def test_query_filters_server_side(live: TrendTrackClient) -> None:
    """The POST route applies the body's filters."""
    page = await live.query_library(QueryBody(type="ad", status="active", limit=10))
    assert page.items
    assert {i.type for i in page.items} == {"ad"}
    assert {i.status for i in page.items} == {"active"}


async def test_detail_by_composite_id_and_by_digits(live: TrendTrackClient) -> None:
    """One item is found by ``tiktok_<digits>`` and by its bare digits."""
    first = (await live.list_library(ListParams(limit=1))).items[0]
    assert first.tiktok_id is not None
    by_id = await live.get_item(first.id)
    by_digits = await live.get_api_item(first.tiktok_id)
    assert by_id.id == by_digits.id == first.id
    assert by_digits.links is not None
    assert by_digits.links.tiktok_url
    assert by_digits.source is not None
    with pytest.raises(NotFound):
        await live.get_item("tiktok_1")


async def test_shop_route_returns_that_shops_items(live: TrendTrackClient) -> None:
    """Items from the shop route all link to the shop asked for."""
    page = await live.list_library(ListParams(limit=50))
    assert len(page.items) == 50
    assert page.skipped == 0
    shop_id = next(i.shop_id for i in page.items if i.shop_id)
    shop_page = await live.shop_library(shop_id, ListParams(limit=5))
    assert shop_page.items
    assert {i.shop_id for i in shop_page.items} == {shop_id}


async def test_count_past_the_end_is_free(live: TrendTrackClient) -> None:
    """count() reads the true total and the meter records 0 credits for it."""
    total = (await live.list_library(ListParams(limit=1))).total
    spent = live.meter.total_used
    assert await live.count(ListParams()) == total
    assert live.meter.total_used == spent
    assert live.meter.records[-1].credits_used == 0


async def test_usage_freshness_and_health(live: TrendTrackClient) -> None:
    """The free routes answer and agree with the meter's balance."""
    await live.list_library(ListParams(limit=2))
    balance = live.meter.balance
    usage = await live.usage()
    assert usage.total_remaining == balance
    fresh = await live.freshness()
    assert fresh.latest_ready_date is not None
    assert await live.health() is True


async def test_bad_key_is_an_auth_error(sim: Any, sleeps: Sleeps) -> None:
    """An unknown key is 401 invalid_api_key, sent once."""
    async with TrendTrackClient(sim.base_url, "tt_live_wrong", sleep=sleeps) as client:
        with pytest.raises(AuthError) as caught:
            await client.list_library(ListParams(limit=1))
    assert caught.value.status == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.request_id
    assert client.meter.requests == 1


async def test_injected_500s_exhaust_retries(
    sim: Any, live: TrendTrackClient, sleeps: Sleeps
) -> None:
    """With every request failing 500, the client retries then raises ApiUnavailable."""
    sim.faults(1.0, ["500"])
    try:
        with pytest.raises(ApiUnavailable):
            await live.list_library(ListParams(limit=1))
    finally:
        sim.faults(0.0, ["500"])
    assert live.meter.requests == 3
    assert len(sleeps.calls) == 2


async def test_documented_only_rejects_updated_after(sleeps: Sleeps) -> None:
    """A simulator serving only the documented API refuses the [chosen] updatedAfter."""
    since = datetime.now(UTC) - timedelta(days=1)
    with running_simulator(seed=1, documented_only=True) as sim:
        async with TrendTrackClient(sim.base_url, sim.api_key, sleep=sleeps) as client:
            with pytest.raises(ValidationFailed) as caught:
                await client.list_library(ListParams(updated_after=since, limit=1))
    assert caught.value.rejects("updatedAfter")
