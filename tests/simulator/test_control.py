"""The /_sim control API and time over real HTTP: advance, change, truth, faults, credits."""

from __future__ import annotations

import time

import httpx
import pytest

from watcher.simulator.examples import EXAMPLE_SHOPS
from watcher.simulator.testing import SimHandle, running_simulator

from .conftest import SMALL, client_for

LIST = "/v1/tiktok/library"


def test_world_summary_names_what_tests_pick_from(sim: SimHandle) -> None:
    """/_sim/world lists now, latestReadyDate, shops, profiles, hashtags and keywords."""
    world = sim.world()
    assert world["now"] == "2026-04-24T06:00:00Z"
    assert world["latestReadyDate"] == "2026-04-23"
    shops = world["shops"]
    assert isinstance(shops, list)
    assert len(shops) == SMALL.shops + len(EXAMPLE_SHOPS)
    assert set(shops[0]) >= {"id", "domain", "name"}
    assert world["profiles"]
    assert world["hashtags"]
    assert "protein gummies" in world["keywords"]  # type: ignore[operator]


def test_advance_counts_refreshes_and_moves_freshness(sim: SimHandle) -> None:
    """Advancing past midnights runs one refresh each; freshness follows, generatedAt is now."""
    assert sim.advance(3600) == {"now": "2026-04-24T07:00:00Z", "refreshes": 0}
    assert sim.advance_days(2) == {"now": "2026-04-26T07:00:00Z", "refreshes": 2}
    with client_for(sim) as client:
        data = client.get("/v1/system/freshness").json()["data"]
    assert data["latestReadyDate"] == "2026-04-25"
    assert data["latestScheduledDate"] == "2026-04-26"
    assert data["generatedAt"] == "2026-04-26T07:00:00Z"
    assert sim.now().isoformat() == "2026-04-26T07:00:00+00:00"


def test_staged_new_item_appears_only_after_the_refresh(sim: SimHandle) -> None:
    """A staged item is invisible until the next refresh, then served and in the truth."""
    shop = sim.world()["shops"][0]  # type: ignore[index]
    before = sim.now().isoformat()
    item_id = sim.change(
        "new_item", type="ad", shopId=shop["id"], hashtags=["gummybears"], indexLagHours=2
    )
    with client_for(sim) as client:
        assert client.get(f"{LIST}/{item_id}").status_code == 404
        sim.advance(17 * 3600)
        assert client.get(f"{LIST}/{item_id}").status_code == 404
        sim.advance(3600)
        row = client.get(f"{LIST}/{item_id}").json()["data"]
        assert row["shop"]["id"] == shop["id"]
        assert row["content"]["hashtags"] == ["gummybears"]
        assert row["updatedAt"] == row["createdAt"] == row["indexedAt"] == "2026-04-25T00:00:00Z"
        assert row["publishedAt"] == "2026-04-24T22:00:00Z"
        found = client.get(LIST, params={"search": "#gummybears", "searchArea": "hashtag"})
        assert [r["id"] for r in found.json()["data"]] == [item_id]
    entries = [e for e in sim.truth(since=before) if e["itemId"] == item_id]
    assert [e["kind"] for e in entries] == ["new_item"]
    assert entries[0]["shopId"] == shop["id"]
    assert entries[0]["at"] == "2026-04-25T00:00:00Z"


def test_lagged_item_sorts_below_known_rows_in_newest(sim: SimHandle) -> None:
    """An item indexed three days late appears below rows already seen in newest order."""
    with client_for(sim) as client:
        top = client.get(LIST, params={"limit": 5}).json()["data"]
        item_id = sim.change("new_item", type="organic", indexLagHours=72)
        sim.advance_days(1)
        rows = client.get(LIST, params={"limit": 50}).json()["data"]
    ids = [row["id"] for row in rows]
    assert top[0]["id"] in ids
    assert item_id not in ids[: ids.index(top[0]["id"]) + 1]


def test_updated_at_moves_for_status_and_pins_but_not_metrics(sim: SimHandle) -> None:
    """After a refresh, a stopped and a pinned item carry the refresh as updatedAt; others not."""
    with client_for(sim) as client:
        ads = client.get(LIST, params={"type": "ad", "status": "active", "pinned": "no"}).json()
        stop_row, pin_row, quiet_row = ads["data"][:3]
        sim.change("stop", itemId=stop_row["id"])
        sim.change("pin", itemId=pin_row["tiktokId"])
        sim.advance_days(1)
        stopped, pinned, quiet = (
            client.get(f"{LIST}/{row['id']}").json()["data"]
            for row in (stop_row, pin_row, quiet_row)
        )
        changed = client.get(
            LIST, params={"sortBy": "updatedAt", "updatedAfter": "2026-04-24T23:59:59Z"}
        ).json()["data"]
    assert stopped["status"] == "inactive"
    assert stopped["updatedAt"] == "2026-04-25T00:00:00Z"
    assert pinned["isPinned"] is pinned["pin"]["isCurrent"] is True
    assert pinned["pin"]["lastPinnedAt"] == pinned["updatedAt"] == "2026-04-25T00:00:00Z"
    assert quiet["metrics"]["views"] >= quiet_row["metrics"]["views"]
    if not any(e["itemId"] == quiet_row["id"] for e in sim.truth() if e["kind"] != "rank"):
        assert quiet["updatedAt"] == quiet_row["updatedAt"]
    assert {stopped["id"], pinned["id"]} <= {row["id"] for row in changed}


def test_documented_only_moves_updated_at_on_metric_updates() -> None:
    """In documented-only mode, a refresh moves every item's updatedAt."""
    with running_simulator(params=SMALL, documented_only=True) as sim, client_for(sim) as c:
        sim.advance_days(1)
        rows = c.get(LIST, params={"sortBy": "updatedAt", "order": "asc", "limit": 5}).json()
    assert {row["updatedAt"] for row in rows["data"]} == {"2026-04-25T00:00:00Z"}


def test_same_seed_same_answers() -> None:
    """Two simulators of one seed serve identical pages, before and after refreshes."""
    pages = []
    for _ in range(2):
        with running_simulator(seed=9, params=SMALL) as sim, client_for(sim) as client:
            first = client.get(LIST, params={"limit": 20, "sortBy": "views"}).json()["data"]
            sim.advance_days(2)
            second = client.get(LIST, params={"limit": 20, "sortBy": "updatedAt"}).json()["data"]
            pages.append((first, second, sim.truth()))
    assert pages[0] == pages[1]


def test_bad_changes_are_refused_over_http(sim: SimHandle) -> None:
    """Unknown shops are 404, unknown kinds are 400."""
    with pytest.raises(httpx.HTTPStatusError) as caught:
        sim.change("new_item", shopId="00000000-0000-4000-8000-000000000000")
    assert caught.value.response.status_code == 404
    with pytest.raises(httpx.HTTPStatusError) as caught:
        sim.change("teleport", itemId="tiktok_1")
    assert caught.value.response.status_code == 400


# faults


def test_fault_500_at_rate_one(sim: SimHandle) -> None:
    """With a 500 rate of 1.0 every /v1 call is a 500 internal_error envelope; control is spared."""
    sim.faults(1.0, ["500"])
    with client_for(sim) as client:
        response = client.get(LIST)
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert response.json()["error"]["requestId"] == response.headers["X-Request-Id"]
        assert sim.world()["now"]
        sim.faults(0.0, [])
        assert client.get(LIST, params={"limit": 1}).status_code == 200


def test_fault_429_has_retry_after(sim: SimHandle) -> None:
    """An injected 429 carries rate_limited and Retry-After."""
    sim.faults(1.0, ["429"])
    with client_for(sim) as client:
        response = client.get("/v1/usage")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


def test_fault_reset_and_bad_json(sim: SimHandle) -> None:
    """A reset drops the connection mid-response; bad_json answers 200 with broken JSON."""
    with client_for(sim) as client:
        sim.faults(1.0, ["reset"])
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(LIST)
        sim.faults(1.0, ["bad_json"])
        response = client.get(LIST)
        assert response.status_code == 200
        with pytest.raises(ValueError, match=r"."):
            response.json()


def test_faults_charge_nothing_and_are_deterministic() -> None:
    """Faulted calls cost no credits, and a seed gives the same fault sequence."""
    outcomes = []
    for _ in range(2):
        with running_simulator(params=SMALL, rate_limit=1000) as sim, client_for(sim) as c:
            sim.faults(0.5, ["500"])
            codes = [c.get(LIST, params={"limit": 1}).status_code for _ in range(20)]
            sim.faults(0.0, [])
            balance = c.get("/v1/usage").json()["credits"]["balance"]
            assert balance == 10000 - codes.count(200)
            outcomes.append(codes)
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 500}


def test_bad_fault_config_is_refused(sim: SimHandle) -> None:
    """Unknown fault kinds and rates outside 0..1 are 400."""
    with pytest.raises(httpx.HTTPStatusError):
        sim.faults(0.5, ["meteor"])
    with pytest.raises(httpx.HTTPStatusError):
        sim.faults(1.5, ["500"])


def test_running_clock_refreshes_by_itself() -> None:
    """With --speed, simulated time runs with the wall clock and refreshes land on their own."""
    # A refresh every 250 ms: fast enough to see, slow enough that a loaded machine does
    # not spend each request catching up hundreds of refreshes.
    with running_simulator(params=SMALL, speed=86400.0 * 4) as sim:
        first = sim.now()
        deadline = time.monotonic() + 30.0
        while sim.world()["refreshes"] == 0 and time.monotonic() < deadline:
            pass
        assert sim.world()["refreshes"] > 0  # type: ignore[operator]
        assert sim.now() > first


def test_fault_slow_delays_then_answers(sim: SimHandle) -> None:
    """A slow fault answers normally after the configured delay."""
    response = httpx.post(
        sim.base_url + "/_sim/faults", json={"rate": 1.0, "kinds": ["slow"], "slowSeconds": 0.2}
    )
    assert response.status_code == 200
    with client_for(sim) as client:
        answer = client.get(LIST, params={"limit": 1})
    assert answer.status_code == 200
    assert answer.elapsed.total_seconds() >= 0.2


def test_hold_after_lets_n_requests_through_then_holds_until_released(sim: SimHandle) -> None:
    """holdAfter N answers the next N /v1 requests, holds the later ones unanswered (the
    control API stays free), and a POST without it releases them."""
    sim.hold_after(2)
    with client_for(sim) as client:
        assert client.get(LIST, params={"limit": 1}).status_code == 200
        assert client.get("/v1/system/freshness").status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            client.get(LIST, params={"limit": 1}, timeout=0.3)
        deadline = time.monotonic() + 10.0
        while sim.fault_state()["held"] != 1:  # the timed-out request is still held
            assert time.monotonic() < deadline, sim.fault_state()
        state = sim.fault_state()
        assert state["holdAfter"] == 2
        assert state["admitted"] == 2
        sim.hold_after(None)
        while sim.fault_state()["held"] != 0:
            assert time.monotonic() < deadline, sim.fault_state()
        assert client.get(LIST, params={"limit": 1}).status_code == 200
    assert sim.fault_state()["holdAfter"] is None


def test_hold_after_refuses_a_bad_count(sim: SimHandle) -> None:
    for bad in (-1, "3", True):
        response = httpx.post(sim.base_url + "/_sim/faults", json={"holdAfter": bad})
        assert response.status_code == 400, bad
