"""Documented-only's result window and ``--unstable-ties``, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from watcher.simulator.params import WorldParams
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.trendtrack import ListParams
from watcher.trendtrack.client import TrendTrackClient

from .conftest import SMALL, client_for

LIST = "/v1/tiktok/library"


@pytest.fixture(scope="module")
def documented() -> Iterator[SimHandle]:
    with running_simulator(params=SMALL, documented_only=True, rate_limit=10_000) as handle:
        yield handle


@pytest.mark.parametrize(
    ("page", "limit", "status"),
    [(200, 50, 200), (201, 50, 400), (10_000, 1, 200), (10_001, 1, 400)],
)
def test_documented_only_enforces_the_result_window(
    documented: SimHandle, page: int, limit: int, status: int
) -> None:
    """page x limit over 10,000 is a 400 on page; at 10,000 it is served."""
    with client_for(documented) as client:
        response = client.get(LIST, params={"page": page, "limit": limit})
    assert response.status_code == status, response.text
    if status == 400:
        fields = [e["field"] for e in response.json()["error"]["details"]["validationErrors"]]
        assert fields == ["query-string.page"]


def test_the_window_holds_on_the_body_and_the_shop_route(documented: SimHandle) -> None:
    """POST bodies fail on body.page, the shop route on query-string.page."""
    with client_for(documented) as client:
        body = client.post("/v1/tiktok/library/query", json={"page": 201, "limit": 50})
        inside = client.post("/v1/tiktok/library/query", json={"page": 10_000, "limit": 1})
        shops = documented.world()["shops"]
        assert isinstance(shops, list)
        shop = client.get(
            f"/v1/shops/{shops[0]['id']}/tiktok/library", params={"page": 2_001, "limit": 5}
        )
    assert inside.status_code == 200
    assert inside.json()["data"] == []
    for response, field in ((body, "body.page"), (shop, "query-string.page")):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert [e["field"] for e in error["details"]["validationErrors"]] == [field]


def test_the_window_is_documented_only() -> None:
    """With the [chosen] features on, a page past the window is an empty page, not a 400."""
    with running_simulator(params=SMALL, rate_limit=10_000) as handle, client_for(handle) as c:
        response = c.get(LIST, params={"page": 201, "limit": 50})
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_counting_stays_free_inside_the_window(documented: SimHandle) -> None:
    """The client counts with a page inside the window: the true total for 0 credits."""

    async def count() -> tuple[int, int | None, int | None]:
        async with TrendTrackClient(documented.base_url, documented.api_key) as client:
            before = (await client.usage()).total_remaining
            total = await client.count(ListParams(status="active"))
            after = (await client.usage()).total_remaining
            return total, before, after

    total, before, after = asyncio.run(count())
    with client_for(documented) as client:
        served = client.get(LIST, params={"status": "active", "limit": 1}).json()
    assert total == served["pagination"]["total"] > 0
    assert before == after


def _orders(handle: SimHandle, rounds: int) -> list[tuple[str, ...]]:
    with client_for(handle) as client:
        return [
            tuple(
                row["id"]
                for row in client.get(LIST, params={"sortBy": "daysRunning", "limit": 50}).json()[
                    "data"
                ]
            )
            for _ in range(rounds)
        ]


def test_unstable_ties_reorder_equal_keys_only() -> None:
    """With --unstable-ties, equal keys come back in varying orders; without, always the same."""
    with running_simulator(params=SMALL, unstable_ties=True, rate_limit=10_000) as handle:
        shaken = _orders(handle, 6)
        with client_for(handle) as client:
            rows = client.get(LIST, params={"sortBy": "daysRunning", "limit": 50}).json()["data"]
    keys = [row["daysRunning"] for row in rows]
    assert keys == sorted(keys, reverse=True)  # still sorted by the key
    assert len(set(shaken)) > 1
    with running_simulator(params=SMALL, rate_limit=10_000) as handle:
        steady = _orders(handle, 3)
    assert len(set(steady)) == 1


DATED = WorldParams(shops=6, profiles_per_shop=2, creators=4, items=300, publish_resolution=86_400)
"""A small world whose publishedAt is a date (midnight): many items share it."""


def _newest(handle: SimHandle, rounds: int) -> list[list[tuple[str, str]]]:
    """``rounds`` reads of the whole library in newest order (pages of 50), as
    (publishedAt, id) in the order served."""
    reads = []
    with client_for(handle) as client:
        for _ in range(rounds):
            rows: list[tuple[str, str]] = []
            for page in range(1, 100):
                data = client.get(LIST, params={"page": page, "limit": 50}).json()["data"]
                if not data:
                    break
                rows += [(str(row["publishedAt"]), str(row["id"])) for row in data]
            reads.append(rows)
    return reads


def test_unstable_ties_shuffle_equal_published_at_in_newest_order() -> None:
    """Items with equal publishedAt come back in any order, differently per request, so
    paging can repeat or skip them; the order of distinct publishedAt never changes."""
    with running_simulator(params=DATED, unstable_ties=True, rate_limit=10_000) as handle:
        shaken = _newest(handle, 3)
    with running_simulator(params=DATED, rate_limit=10_000) as handle:
        steady = _newest(handle, 2)
    assert steady[0] == steady[1], "without the flag the order is stable"
    stamps = [published for published, _id in steady[0]]
    assert len(set(stamps)) < len(stamps) / 3, "the dated world has many ties"
    assert stamps == sorted(stamps, reverse=True)
    assert all(stamp.endswith("T00:00:00Z") for stamp in stamps)
    for read in shaken:
        assert [published for published, _id in read] == stamps, "still newest first"
        assert read != steady[0]
    assert len({tuple(read) for read in shaken}) > 1
    # Across pages, one read's ids are not the library's ids: ties moved between pages.
    assert any(sorted(i for _p, i in read) != sorted(i for _p, i in steady[0]) for read in shaken)
