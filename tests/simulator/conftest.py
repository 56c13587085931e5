"""Fixtures for the simulator's tests: real servers over HTTP, and small pure worlds."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from watcher.simulator.params import WorldParams
from watcher.simulator.testing import SimHandle, running_simulator, tls_context
from watcher.simulator.world import World

SMALL = WorldParams.small()
KEY = "tt_sim_demo"


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """A fresh small simulator per test: free to advance, fault and drain."""
    with running_simulator(seed=3, params=SMALL) as handle:
        yield handle


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimHandle]:
    """One small simulator per module for read-only contract checks (generous limits)."""
    with running_simulator(seed=5, params=SMALL, rate_limit=100_000, credits=10**9) as handle:
        yield handle


@pytest.fixture(scope="module")
def api(shared_sim: SimHandle) -> Iterator[httpx.Client]:
    """An authenticated client of ``shared_sim``."""
    headers = {"Authorization": f"Bearer {shared_sim.api_key}"}
    with httpx.Client(
        base_url=shared_sim.base_url, headers=headers, timeout=10, verify=tls_context()
    ) as client:
        yield client


def client_for(handle: SimHandle, key: str | None = None) -> httpx.Client:
    """An authenticated client of ``handle`` (with ``key`` instead of its own if given)."""
    headers = {"Authorization": f"Bearer {key or handle.api_key}"}
    return httpx.Client(base_url=handle.base_url, headers=headers, timeout=10, verify=tls_context())


@pytest.fixture
def world() -> World:
    """A small pure world (no server)."""
    return World(11, SMALL)
