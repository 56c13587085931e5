"""Fixtures of the TrendTrack client tests: a fake API behind MockTransport, no real waits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.trendtrack.fakes import API_KEY, BASE_URL, FakeApi, FakeClock, Sleeps
from watcher.trendtrack.client import TrendTrackClient


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(api: FakeApi, sleeps: Sleeps, clock: FakeClock) -> AsyncIterator[TrendTrackClient]:
    async with TrendTrackClient(
        BASE_URL,
        API_KEY,
        transport=httpx.MockTransport(api),
        sleep=sleeps,
        clock=clock,
        max_retries=3,
        max_requests_per_minute=10_000,
    ) as c:
        yield c
