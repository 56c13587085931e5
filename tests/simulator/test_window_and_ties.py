"""Documented-only's result window and ``--unstable-ties``, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

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
