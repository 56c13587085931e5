"""The /v1 contract over real HTTP: errors, filters, sorting, paging, credits, headers."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from watcher.simulator.testing import SimHandle, running_simulator, tls_context

from .conftest import SMALL, client_for

LIST = "/v1/tiktok/library"
QUERY = "/v1/tiktok/library/query"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert error["code"] == code
    assert error["requestId"] == response.headers["X-Request-Id"]
    return error


def _fields(response: httpx.Response) -> set[str]:
    error = _error(response, 400, "validation_error")
    details: dict[str, list[dict[str, object]]] = error["details"]  # type: ignore[assignment]
    return {str(entry["field"]) for entry in details["validationErrors"]}


def _ts(text: object) -> datetime:
    return datetime.fromisoformat(str(text))


# auth


def test_missing_key_is_401(shared_sim: SimHandle) -> None:
    """No Authorization header: 401 missing_api_key, even on the free routes."""
    for path in (LIST, "/v1/usage", "/v1/system/freshness"):
        _error(httpx.get(shared_sim.base_url + path, verify=tls_context()), 401, "missing_api_key")


def test_unknown_key_is_401(shared_sim: SimHandle) -> None:
    """An unknown key: 401 invalid_api_key."""
    with client_for(shared_sim, "tt_live_nope") as client:
        _error(client.get(LIST), 401, "invalid_api_key")


def test_health_needs_no_key_and_every_response_has_a_request_id(shared_sim: SimHandle) -> None:
    """/v1/health answers without a key; X-Request-Id is on every response."""
    response = httpx.get(shared_sim.base_url + "/v1/health", verify=tls_context())
    assert response.status_code == 200
    assert response.json()["requestId"] == response.headers["X-Request-Id"]


# validation


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"limit": "51"}, {"query-string.limit"}),
        ({"limit": "0", "page": "0"}, {"query-string.limit", "query-string.page"}),
        ({"limit": "ten"}, {"query-string.limit"}),
        ({"type": "video"}, {"query-string.type"}),
        ({"sortBy": "hot", "order": "up"}, {"query-string.sortBy", "query-string.order"}),
        ({"updatedAfter": "yesterday"}, {"query-string.updatedAfter"}),
        ({"minViews": "5"}, {"query-string.minViews"}),
    ],
)
def test_query_string_validation(
    api: httpx.Client, params: dict[str, str], fields: set[str]
) -> None:
    """Each bad GET parameter is named in validationErrors with the query-string prefix."""
    assert _fields(api.get(LIST, params=params)) == fields


def test_validation_error_shape(api: httpx.Client) -> None:
    """A validation entry has field, location and expected messages."""
    error = _error(api.get(LIST, params={"limit": 100}), 400, "validation_error")
    entry = error["details"]["validationErrors"][0]  # type: ignore[index]
    assert entry == {
        "field": "query-string.limit",
        "location": "query-string",
        "expected": ["limit must not be greater than 50"],
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"{not json", {"body"}),
        (b"[1, 2]", {"body"}),
        (b'{"colour": "red"}', {"body.colour"}),
        (b'{"search": "gummies"}', {"body.search"}),
        (b'{"minViews": -1, "limit": 0}', {"body.minViews", "body.limit"}),
        (b'{"limit": "10"}', {"body.limit"}),
        (b'{"publishedAfter": "soon"}', {"body.publishedAfter"}),
    ],
)
def test_body_validation(api: httpx.Client, body: bytes, fields: set[str]) -> None:
    """Bad JSON, unknown keys and bad values are named with the body prefix."""
    response = api.post(QUERY, content=body, headers={"Content-Type": "application/json"})
    assert _fields(response) == fields


# filters, sorting, paging


def _all(api: httpx.Client, **params: object) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    page = 1
    while True:
        body = api.get(LIST, params={**params, "limit": 50, "page": page}).json()
        rows += body["data"]
        if page >= body["pagination"]["totalPages"]:
            return rows
        page += 1


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"type": "ad"}, lambda i: i["type"] == "ad"),
        ({"type": "organic"}, lambda i: i["type"] == "organic"),
        ({"status": "inactive"}, lambda i: i["status"] == "inactive"),
        ({"pinned": "yes"}, lambda i: i["isPinned"] and i["pin"]["isCurrent"]),
        ({"pinned": "no"}, lambda i: not i["isPinned"]),
        (
            {"updatedAfter": "2026-04-20T00:00:00Z"},
            lambda i: i["updatedAt"] > "2026-04-20T00:00:00Z",
        ),
    ],
)
def test_get_filters(api: httpx.Client, params: dict[str, str], check: object) -> None:
    """Each GET filter returns only matching rows, and some but not all rows."""
    everything = api.get(LIST, params={"limit": 1}).json()["pagination"]["total"]
    rows = _all(api, **params)
    assert 0 < len(rows) < everything
    assert all(check(row) for row in rows)  # type: ignore[operator]


def test_search_areas_and_keyword_modes(api: httpx.Client, shared_sim: SimHandle) -> None:
    """Search matches per area, with or without #/@, and keywordMode all narrows any."""
    world = shared_sim.world()
    tag = str(world["hashtags"][0])  # type: ignore[index]
    by_tag = _all(api, search=f"#{tag}", searchArea="hashtag")
    assert by_tag
    assert all(tag in row["content"]["hashtags"] for row in by_tag)  # type: ignore[index]
    handle = str(world["profiles"][0]["handle"])  # type: ignore[index]
    by_profile = _all(api, search=f"@{handle}", searchArea="profile")
    assert by_profile
    assert all(handle in row["profile"]["handle"] for row in by_profile)  # type: ignore[index]
    one = api.get(LIST, params={"search": "fyp", "limit": 1}).json()["pagination"]["total"]
    either = api.get(LIST, params={"search": "fyp,viral", "limit": 1}).json()["pagination"]
    both = api.get(
        LIST, params=[("search", "fyp"), ("search", "viral"), ("keywordMode", "all"), ("limit", 1)]
    ).json()["pagination"]
    assert both["total"] < one < either["total"]
    caption = _all(api, search="REVIEW", searchArea="caption")
    assert caption
    assert all("review" in str(row["content"]["description"]).lower() for row in caption)  # type: ignore[index]


@pytest.mark.parametrize(
    ("sort_by", "path"),
    [
        ("newest", ("publishedAt",)),
        ("updatedAt", ("updatedAt",)),
        ("views", ("metrics", "views")),
        ("likes", ("metrics", "likes")),
        ("comments", ("metrics", "comments")),
        ("shares", ("metrics", "shares")),
        ("saves", ("metrics", "saves")),
        ("engagementRate", ("metrics", "engagementRate")),
        ("daysRunning", ("daysRunning",)),
        ("followers", ("profile", "followers")),
        ("relevance", ("publishedAt",)),
    ],
)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting(api: httpx.Client, sort_by: str, path: tuple[str, ...], order: str) -> None:
    """Every sortBy orders by its field in both orders; ties break by id descending."""
    rows = api.get(LIST, params={"sortBy": sort_by, "order": order, "limit": 50}).json()["data"]
    keys = []
    for row in rows:
        value = row
        for part in path:
            value = value[part]
        keys.append(value)
    assert keys == sorted(keys, reverse=order == "desc")
    for n in range(1, len(rows)):
        if keys[n - 1] == keys[n]:
            assert int(rows[n - 1]["tiktokId"]) > int(rows[n]["tiktokId"])


def test_body_filters(api: httpx.Client) -> None:
    """The body's numeric, language and date filters each hold on every row."""
    body = {
        "minViews": 1000,
        "maxViews": 500_000,
        "minLikes": 50,
        "minEngagementRate": 3,
        "language": "en",
        "publishedAfter": "2026-03-01T00:00:00Z",
        "publishedBefore": "2026-04-20T00:00:00Z",
        "limit": 50,
    }
    response = api.post(QUERY, json=body)
    assert response.status_code == 200
    rows = response.json()["data"]
    assert rows
    for row in rows:
        metrics = row["metrics"]
        assert 1000 <= metrics["views"] <= 500_000
        assert metrics["likes"] >= 50
        assert metrics["engagementRate"] >= 3
        assert row["content"]["language"] == "en"
        assert "2026-03-01" < row["publishedAt"] < "2026-04-20"


def test_post_and_get_agree(api: httpx.Client) -> None:
    """The body route returns the same rows as the GET route for the same parameters."""
    params = {"type": "ad", "status": "active", "sortBy": "views", "limit": 10}
    got = api.get(LIST, params=params).json()["data"]
    posted = api.post(QUERY, json=params).json()["data"]
    assert [r["id"] for r in got] == [r["id"] for r in posted]


def test_pagination_and_past_the_end_page(sim: SimHandle) -> None:
    """Pages tile the result; a page past the end is empty, keeps the total and costs 0."""
    with client_for(sim) as client:
        first = client.get(LIST, params={"type": "ad", "limit": 7})
        body = first.json()
        total = body["pagination"]["total"]
        assert body["pagination"]["totalPages"] == -(-total // 7)
        assert first.headers["X-Usage-Cost"] == "7"
        second = client.get(LIST, params={"type": "ad", "limit": 7, "page": 2}).json()["data"]
        assert not {r["id"] for r in body["data"]} & {r["id"] for r in second}
        remaining = int(first.headers["X-Credits-Remaining"]) - 7
        past = client.get(LIST, params={"type": "ad", "limit": 7, "page": 10_000})
        assert past.status_code == 200
        assert past.json()["data"] == []
        assert past.json()["pagination"]["total"] == total
        assert past.headers["X-Usage-Cost"] == past.headers["X-Credits-Used"] == "0"
        assert int(past.headers["X-Credits-Remaining"]) == remaining


# credits and limits


def test_credit_headers_and_usage(sim: SimHandle) -> None:
    """Rows returned are charged, the headers say so, and /v1/usage agrees."""
    with client_for(sim) as client:
        response = client.get(LIST, params={"limit": 12})
        assert response.headers["X-Usage-Cost"] == "12"
        assert response.headers["X-Credits-Remaining"] == "9988"
        assert response.headers["X-Credits-Source"] == "recurring"
        item_id = response.json()["data"][0]["id"]
        detail = client.get(f"{LIST}/{item_id}")
        assert detail.headers["X-Usage-Cost"] == "1"
        usage = client.get("/v1/usage")
        assert "X-Usage-Cost" not in usage.headers
        assert usage.json()["credits"] == {
            "balance": 9987,
            "recurring": {"limit": 10000, "used": 13, "remaining": 9987},
            "topup": {"balance": 0},
            "totalRemaining": 9987,
        }


def test_reservation_is_limit_rows(sim: SimHandle) -> None:
    """A balance below limit is a 402 even if fewer rows would come back; small limits pass."""
    sim.set_credits(10)
    with client_for(sim) as client:
        _error(client.get(LIST, params={"limit": 11, "page": 10_000}), 402, "insufficient_credits")
        ok = client.get(LIST, params={"limit": 10})
        assert ok.status_code == 200
        assert ok.headers["X-Credits-Remaining"] == "0"
        _error(client.get(LIST + "/tiktok_1"), 402, "insufficient_credits")


def test_topup_credits_and_sources(sim: SimHandle) -> None:
    """A balance above the plan is top-up; spending across both is hybrid."""
    sim.set_credits(10_005)
    with client_for(sim) as client:
        assert client.get(LIST, params={"limit": 10}).headers["X-Credits-Source"] == "recurring"
        usage = client.get("/v1/usage").json()["credits"]
        assert usage["topup"] == {"balance": 5}
        sim.set_credits(3)
        assert client.get(LIST, params={"limit": 3}).headers["X-Credits-Source"] == "recurring"


def test_rate_limit_429_with_retry_after() -> None:
    """Past the per-key limit: 429 rate_limited with Retry-After; headers count down."""
    with running_simulator(params=SMALL, rate_limit=3) as sim, client_for(sim) as client:
        remaining = [client.get("/v1/usage").headers["X-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        refused = client.get(LIST)
        _error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["X-RateLimit-Limit"] == "3"


def test_keys_have_separate_limits_and_credits() -> None:
    """Credits and rate limits are per key."""
    keys = ("tt_sim_a", "tt_sim_b")
    with (
        running_simulator(params=SMALL, api_keys=keys, rate_limit=1) as sim,
        client_for(sim, "tt_sim_a") as a,
        client_for(sim, "tt_sim_b") as b,
    ):
        assert a.get(LIST, params={"limit": 5}).headers["X-Credits-Remaining"] == "9995"
        assert b.get("/v1/usage").json()["credits"]["balance"] == 10000
        assert a.get("/v1/usage").status_code == 429


# detail and shop routes


def test_detail_by_composite_and_bare_id(api: httpx.Client) -> None:
    """The detail route takes tiktok_<digits> or bare digits and adds links and source."""
    row = api.get(LIST, params={"limit": 1, "type": "ad"}).json()["data"][0]
    by_id = api.get(f"{LIST}/{row['id']}").json()["data"]
    by_digits = api.get(f"{LIST}/{row['tiktokId']}").json()["data"]
    assert by_id == by_digits
    handle = row["profile"]["handle"]
    assert by_id["links"] == {
        "tiktokUrl": f"https://www.tiktok.com/@{handle}/video/{row['tiktokId']}",
        "profileUrl": f"https://www.tiktok.com/@{handle}",
    }
    assert by_id["source"]["websiteId"] == row["shop"]["id"]


def test_unknown_item_and_shop_are_404(api: httpx.Client) -> None:
    """Unknown item ids and shop ids: 404 not_found."""
    _error(api.get(f"{LIST}/tiktok_1234567890123456789"), 404, "not_found")
    _error(api.get(f"{LIST}/banana"), 404, "not_found")
    shop = "/v1/shops/0b6d7c1e-2f4a-4c55-9d3e-8a1f00000000/tiktok/library"
    _error(api.get(shop), 404, "not_found")


def test_shop_route_lists_only_that_shop(api: httpx.Client, shared_sim: SimHandle) -> None:
    """The shop route returns the shop's items and refuses search."""
    shop_id = str(shared_sim.world()["shops"][0]["id"])  # type: ignore[index]
    path = f"/v1/shops/{shop_id}/tiktok/library"
    body = api.get(path, params={"limit": 50, "sortBy": "views"}).json()
    assert body["data"]
    assert all(row["shop"]["id"] == shop_id for row in body["data"])
    views = [row["metrics"]["views"] for row in body["data"]]
    assert views == sorted(views, reverse=True)
    assert _fields(api.get(path, params={"search": "x"})) == {"query-string.search"}


def test_freshness(api: httpx.Client) -> None:
    """Freshness names the ready and scheduled dates and the lag."""
    body = api.get("/v1/system/freshness").json()
    assert body["status"] == "ok"
    assert body["data"]["latestReadyDate"] == "2026-04-23"
    assert body["data"]["latestScheduledDate"] == "2026-04-24"
    assert body["data"]["dataFreshnessLagDays"] == 1


# documented-only


@pytest.fixture(scope="module")
def documented() -> object:
    """A documented-only simulator."""
    with running_simulator(params=SMALL, documented_only=True, rate_limit=10_000) as handle:
        yield handle


@pytest.mark.parametrize("name", ["updatedAfter", "pinned", "keywordMode"])
def test_documented_only_rejects_chosen_get_params(documented: SimHandle, name: str) -> None:
    """Documented-only refuses each [chosen] GET parameter by name."""
    value = {"updatedAfter": "2026-04-01T00:00:00Z", "pinned": "yes", "keywordMode": "all"}[name]
    with client_for(documented) as client:
        assert _fields(client.get(LIST, params={name: value})) == {f"query-string.{name}"}
        assert client.get(LIST, params={"limit": 1}).status_code == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("updatedAfter", "2026-04-01T00:00:00Z"),
        ("maxViews", 5),
        ("minLikes", 5),
        ("minEngagementRate", 1.5),
        ("language", "en"),
        ("publishedAfter", "2026-04-01T00:00:00Z"),
        ("publishedBefore", "2026-04-01T00:00:00Z"),
    ],
)
def test_documented_only_rejects_chosen_body_keys(
    documented: SimHandle, name: str, value: object
) -> None:
    """Documented-only refuses each [chosen] body key, but keeps pinned/keywordMode/minViews."""
    with client_for(documented) as client:
        assert _fields(client.post(QUERY, json={name: value})) == {f"body.{name}"}
        seed_body = {"pinned": "no", "keywordMode": "all", "minViews": 10, "limit": 2}
        assert client.post(QUERY, json=seed_body).status_code == 200
