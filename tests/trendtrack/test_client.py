"""The client against scripted responses: routes, errors, retries, pacing, credits, secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest

from tests.trendtrack.fakes import (
    API_KEY,
    BASE_URL,
    FakeApi,
    FakeClock,
    Sleeps,
    failure,
    item_json,
    ok,
    page_json,
)
from watcher.errors import (
    ApiError,
    ApiUnavailable,
    AuthError,
    InsufficientCredits,
    NotFound,
    ParameterError,
    RateLimited,
    ValidationFailed,
)
from watcher.trendtrack import ListParams, QueryBody
from watcher.trendtrack.client import TrendTrackClient, rejects_parameter
from watcher.trendtrack.meter import UsageRecord

SHOP_ID = "9b2f6a2e-8f7e-4c53-9a3b-2b1f5d7c0e11"


async def test_list_library_sends_key_and_params_and_returns_a_page(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """GET list carries the bearer key and camelCase params; the page holds domain items."""
    api.reply(ok(page_json([item_json(1), item_json(2)], limit=2, total=7), credits=2))
    page = await client.list_library(ListParams(search=("a", "b"), sort_by="newest", limit=2))
    request = api.requests[0]
    assert request.method == "GET"
    assert request.url.path == "/v1/tiktok/library"
    assert request.url.params.get_list("search") == ["a", "b"]
    assert request.url.params["sortBy"] == "newest"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert [i.id for i in page.items] == [item_json(1)["id"], item_json(2)["id"]]
    assert (page.total, page.page, page.limit, page.total_pages) == (7, 1, 2, 4)
    assert page.credits_used == 2
    assert page.request_id == "req_page_1"
    assert page.has_more


async def test_query_library_posts_the_json_body(client: TrendTrackClient, api: FakeApi) -> None:
    """POST query sends the body as JSON to the query route."""
    api.reply(ok(page_json([item_json()])))
    body = QueryBody(search=["protein gummies"], min_views=10000, limit=10)
    page = await client.query_library(body)
    request = api.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/tiktok/library/query"
    assert request.headers["Content-Type"] == "application/json"
    assert api.body() == {"search": ["protein gummies"], "minViews": 10000, "limit": 10}
    assert len(page.items) == 1


async def test_shop_route_uses_the_shop_path(client: TrendTrackClient, api: FakeApi) -> None:
    """The shop route puts the shop id in the path and the filters in the query."""
    api.reply(ok(page_json([])))
    page = await client.shop_library(SHOP_ID, ListParams(type="ad", limit=5))
    assert api.requests[0].url.path == f"/v1/shops/{SHOP_ID}/tiktok/library"
    assert api.requests[0].url.params["type"] == "ad"
    assert page.items == ()
    assert not page.has_more


async def test_get_item_by_composite_id_and_bare_digits(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """Detail lookups accept both id forms and convert to Item."""
    api.reply(ok({"requestId": "r", "data": item_json(links={"tiktokUrl": "u"})}, credits=1))
    item = await client.get_item("tiktok_7078586231734521001")
    detail = await client.get_api_item("7078586231734521001")
    assert [r.url.path for r in api.requests] == [
        "/v1/tiktok/library/tiktok_7078586231734521001",
        "/v1/tiktok/library/7078586231734521001",
    ]
    assert item.tiktok_id == "7078586231734521001"
    assert detail.links is not None
    assert detail.links.tiktok_url == "u"


async def test_get_item_with_a_malformed_body_is_unavailable(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """A detail body without a valid item is ApiUnavailable, not a pydantic error."""
    api.reply(ok({"requestId": "r", "data": {"id": None}}))
    with pytest.raises(ApiUnavailable, match="malformed"):
        await client.get_item("tiktok_1")


async def test_a_malformed_item_is_skipped_and_counted(
    client: TrendTrackClient, api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    """A row without a valid id is dropped with a warning; the others are kept."""
    api.reply(ok(page_json([item_json(1), {"id": "", "metrics": []}, item_json(3)])))
    with caplog.at_level(logging.WARNING, logger="watcher.trendtrack"):
        page = await client.list_library(ListParams())
    assert len(page.items) == 2
    assert page.skipped == 1
    assert "skipped malformed item #1" in caplog.text


async def test_a_page_whose_data_is_not_a_list_is_unavailable(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """A 200 with ``data`` of the wrong shape raises ApiUnavailable."""
    api.reply(ok({"data": {"oops": 1}}))
    with pytest.raises(ApiUnavailable, match="not a list"):
        await client.list_library(ListParams())


# -- errors ------------------------------------------------------------------------------

NOT_RETRIED: list[tuple[int, str, type[ApiError]]] = [
    (400, "validation_error", ValidationFailed),
    (401, "missing_api_key", AuthError),
    (401, "invalid_api_key", AuthError),
    (401, "credential_revoked", AuthError),
    (402, "insufficient_credits", InsufficientCredits),
    (403, "workspace_public_api_disabled", AuthError),
    (403, "forbidden", AuthError),
    (404, "not_found", NotFound),
]


@pytest.mark.parametrize(("status", "code", "cls"), NOT_RETRIED)
async def test_client_errors_are_typed_and_never_retried(
    client: TrendTrackClient,
    api: FakeApi,
    sleeps: Sleeps,
    status: int,
    code: str,
    cls: type[ApiError],
) -> None:
    """4xx errors raise their class with code, status and requestId after one request."""
    api.reply(failure(status, code))
    with pytest.raises(cls) as caught:
        await client.list_library(ListParams())
    assert len(api.requests) == 1
    assert sleeps.calls == []
    assert caught.value.code == code
    assert caught.value.status == status
    assert caught.value.request_id == f"req_{status}"


async def test_validation_details_name_the_rejected_parameter(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """400 details are parsed so callers can detect a refused ``updatedAfter``."""
    details = [
        {
            "field": "query-string.updatedAfter",
            "location": "query-string",
            "expected": ["updatedAfter is not allowed"],
        },
        {"field": "query-string.limit", "location": "query-string", "expected": "<= 50"},
        "garbage",
    ]
    api.reply(failure(400, "validation_error", details=details))
    with pytest.raises(ValidationFailed) as caught:
        await client.list_library(ListParams())
    exc = caught.value
    assert [d.field for d in exc.details] == ["query-string.updatedAfter", "query-string.limit"]
    assert exc.details[0].expected == ("updatedAfter is not allowed",)
    assert exc.details[1].expected == ("<= 50",)
    assert exc.rejects("updatedAfter")
    assert rejects_parameter(exc, "limit")
    assert not rejects_parameter(exc, "page")
    assert not rejects_parameter(RuntimeError(), "limit")


async def test_the_code_decides_not_the_message_or_status(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """A known code wins over the status; an unknown code falls back to the status."""
    api.reply(
        failure(403, "insufficient_credits", message="not_found"),
        failure(404, "no_such_thing"),
    )
    with pytest.raises(InsufficientCredits):
        await client.list_library(ListParams())
    with pytest.raises(NotFound):
        await client.list_library(ListParams())


async def test_an_unexpected_4xx_is_a_plain_api_error(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """An undocumented 4xx without an envelope is ApiError and is not retried."""
    api.reply(httpx.Response(418, text="teapot"))
    with pytest.raises(ApiError) as caught:
        await client.list_library(ListParams())
    assert type(caught.value) is ApiError
    assert caught.value.status == 418
    assert len(api.requests) == 1


# -- retries -----------------------------------------------------------------------------


async def test_429_waits_retry_after_then_succeeds(
    client: TrendTrackClient, api: FakeApi, sleeps: Sleeps
) -> None:
    """A 429 sleeps for Retry-After via the injected sleep, then retries."""
    api.reply(
        failure(429, "rate_limited", headers={"Retry-After": "7"}),
        ok(page_json([item_json()])),
    )
    page = await client.list_library(ListParams())
    assert len(page.items) == 1
    assert len(api.requests) == 2
    assert sleeps.calls == [7.0]


async def test_retry_after_is_capped(
    client: TrendTrackClient, api: FakeApi, sleeps: Sleeps
) -> None:
    """An absurd Retry-After is capped at 300 seconds."""
    api.reply(failure(429, "rate_limited", headers={"Retry-After": "86400"}), ok(page_json([])))
    await client.list_library(ListParams())
    assert sleeps.calls == [300.0]


async def test_429_storm_raises_rate_limited_with_the_last_hint(
    client: TrendTrackClient, api: FakeApi, sleeps: Sleeps
) -> None:
    """Persistent 429s end in RateLimited carrying retry_after, after max_retries + 1 tries."""
    api.reply(failure(429, "rate_limited", headers={"Retry-After": "2"}))
    with pytest.raises(RateLimited) as caught:
        await client.list_library(ListParams())
    assert caught.value.retry_after == 2.0
    assert len(api.requests) == 4
    assert sleeps.calls == [2.0, 2.0, 2.0]


async def test_500_storm_exhausts_retries(
    client: TrendTrackClient, api: FakeApi, sleeps: Sleeps
) -> None:
    """5xx back off exponentially (bounded) and end in ApiUnavailable."""
    api.reply(failure(500, "internal_error"))
    with pytest.raises(ApiUnavailable) as caught:
        await client.list_library(ListParams())
    assert len(api.requests) == 4  # max_retries=3 in the fixture
    assert caught.value.code == "internal_error"
    assert caught.value.status == 500
    assert len(sleeps.calls) == 3
    assert all(0 < s <= 61 for s in sleeps.calls)


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_without_envelope_are_retried(
    client: TrendTrackClient, api: FakeApi, status: int
) -> None:
    """A proxy's bare 5xx page is retried like internal_error."""
    api.reply(httpx.Response(status, text="<html>bad gateway</html>"), ok(page_json([])))
    await client.list_library(ListParams())
    assert len(api.requests) == 2


async def test_invalid_json_is_retried(client: TrendTrackClient, api: FakeApi) -> None:
    """A 200 whose body is not JSON is retried, then the good answer is used."""
    api.reply(
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
        ok(page_json([item_json()])),
    )
    page = await client.list_library(ListParams())
    assert len(page.items) == 1
    assert len(api.requests) == 3


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_transport_errors_are_retried(
    client: TrendTrackClient, api: FakeApi, error: Exception
) -> None:
    """Dropped connections and timeouts are retried."""
    api.reply(error, ok(page_json([])))
    await client.list_library(ListParams())
    assert len(api.requests) == 2


async def test_transport_errors_end_in_api_unavailable_with_cause(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """After the last retry a foreign error is translated, chained with ``from``."""
    api.reply(httpx.ConnectError("connection refused"))
    with pytest.raises(ApiUnavailable) as caught:
        await client.usage()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "ConnectError" in str(caught.value)
    assert len(api.requests) == 4


async def test_zero_retries_means_one_attempt(api: FakeApi, sleeps: Sleeps) -> None:
    """max_retries=0 sends exactly once."""
    api.reply(failure(503, None))
    async with TrendTrackClient(
        BASE_URL, API_KEY, transport=httpx.MockTransport(api), sleep=sleeps, max_retries=0
    ) as client:
        with pytest.raises(ApiUnavailable):
            await client.freshness()
    assert len(api.requests) == 1
    assert sleeps.calls == []


# -- parameter checks before sending -----------------------------------------------------


async def test_bad_requests_are_refused_before_sending(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """Path injection, search on the shop route and a body for a shop send nothing."""
    with pytest.raises(ParameterError, match="item id"):
        await client.get_item("../usage")
    with pytest.raises(ParameterError, match="shop id"):
        await client.shop_library("a/b", ListParams())
    with pytest.raises(ParameterError, match="no search"):
        await client.shop_library(SHOP_ID, ListParams(search="x"))
    with pytest.raises(ParameterError, match="QueryBody"):
        await client.fetch(QueryBody(), shop_id=SHOP_ID)
    with pytest.raises(ParameterError, match="limit"):
        await client.list_library(ListParams(limit=100))
    assert api.requests == []


# -- secrecy -----------------------------------------------------------------------------


async def test_the_key_never_leaks(
    client: TrendTrackClient, api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Not in repr/str of the client, nor in errors that echo it, nor in any log line."""
    assert API_KEY not in repr(client)
    assert API_KEY not in str(client)
    caplog.set_level(logging.DEBUG)
    api.reply(
        failure(401, "invalid_api_key", message=f"unknown key {API_KEY}"),
        httpx.ConnectError(f"proxy refused Bearer {API_KEY}"),
        failure(
            400,
            "validation_error",
            details=[{"field": "header.authorization", "expected": [f"not {API_KEY}"]}],
        ),
    )
    errors: list[ApiError] = []
    for _ in range(2):
        try:
            await client.list_library(ListParams())
        except ApiError as exc:
            errors.append(exc)
    assert [type(e) for e in errors] == [AuthError, ValidationFailed]
    for exc in errors:
        assert API_KEY not in str(exc)
        assert API_KEY not in repr(exc)
        assert all(API_KEY not in e for d in exc.details for e in d.expected)
    assert "<redacted>" in str(errors[0])
    assert caplog.records, "debug logging was expected"
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(client.meter)


# -- pacing ------------------------------------------------------------------------------


async def test_spent_rate_window_pauses_until_reset(
    client: TrendTrackClient, api: FakeApi, sleeps: Sleeps
) -> None:
    """Remaining 0 makes the next request wait X-RateLimit-Reset seconds first."""
    api.reply(
        ok(page_json([]), headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42"}),
        ok(page_json([]), headers={"X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "60"}),
    )
    await client.list_library(ListParams())
    assert sleeps.calls == []
    await client.list_library(ListParams())
    await client.list_library(ListParams())
    assert sleeps.calls == [42.0]


async def test_elapsed_time_shortens_the_pause(
    client: TrendTrackClient, api: FakeApi, sleeps: Sleeps, clock: FakeClock
) -> None:
    """Only the part of the reset not yet elapsed is waited; a passed reset waits nothing."""
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    api.reply(ok(page_json([]), headers=spent), ok(page_json([]), headers=spent), ok(page_json([])))
    await client.list_library(ListParams())
    clock.now += 20
    await client.list_library(ListParams())
    clock.now += 31
    await client.list_library(ListParams())
    assert sleeps.calls == [10.0]


async def test_concurrency_is_bounded(api: FakeApi, sleeps: Sleeps) -> None:
    """No more than max_concurrency requests are in flight at once."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return ok(page_json([]))

    async with TrendTrackClient(
        BASE_URL, API_KEY, transport=httpx.MockTransport(handler), sleep=sleeps, max_concurrency=2
    ) as client:
        await asyncio.gather(*(client.list_library(ListParams()) for _ in range(6)))
    assert peak == 2


# -- credits -----------------------------------------------------------------------------


async def test_credit_meter_sums_headers_per_route_template(api: FakeApi, sleeps: Sleeps) -> None:
    """The meter totals X-Credits-Used, keeps the balance and records route templates."""
    seen: list[UsageRecord] = []
    api.reply(
        ok(page_json([item_json()] * 10), credits=10, headers={"X-Credits-Remaining": "990"}),
        httpx.Response(
            200,
            json=page_json([item_json()] * 3),
            headers={"X-Usage-Cost": "3", "X-Credits-Remaining": "987", "X-Request-Id": "r2"},
        ),
        failure(402, "insufficient_credits", headers={"X-Credits-Used": "0"}),
    )
    async with TrendTrackClient(
        BASE_URL,
        API_KEY,
        transport=httpx.MockTransport(api),
        sleep=sleeps,
        on_usage=seen.append,
    ) as client:
        await client.list_library(ListParams(limit=10))
        await client.shop_library(SHOP_ID, ListParams(limit=3))
        with pytest.raises(InsufficientCredits):
            await client.list_library(ListParams(limit=50))
    meter = client.meter
    assert meter.total_used == 13
    assert meter.balance == 987
    assert meter.source == "recurring"
    assert meter.requests == 3
    assert [r.route for r in meter.records] == [
        "/v1/tiktok/library",
        "/v1/shops/{shopId}/tiktok/library",
        "/v1/tiktok/library",
    ]
    assert [r.credits_used for r in meter.records] == [10, 3, 0]
    assert meter.records[1].request_id == "r2"
    assert meter.records[2].status == 402
    assert seen == list(meter.records)


async def test_usage_updates_the_balance(client: TrendTrackClient, api: FakeApi) -> None:
    """GET /v1/usage parses credits and refreshes meter.balance."""
    api.reply(
        ok(
            {
                "requestId": "req_u",
                "credits": {
                    "balance": 500,
                    "recurring": {"limit": 10000, "used": 9600, "remaining": 400},
                    "topup": {"balance": 100},
                    "totalRemaining": 500,
                },
            }
        )
    )
    usage = await client.usage()
    assert usage.request_id == "req_u"
    assert usage.topup is not None
    assert usage.topup.balance == 100
    assert client.meter.balance == 500
    assert api.requests[0].url.path == "/v1/usage"


async def test_freshness_and_health(client: TrendTrackClient, api: FakeApi) -> None:
    """Freshness parses its data object; health sends no key and reports 2xx as True."""
    api.reply(
        ok(
            {
                "status": "ok",
                "data": {
                    "latestReadyDate": "2026-04-23",
                    "latestScheduledDate": "2026-04-24",
                    "dataFreshnessLagDays": 1,
                    "generatedAt": "2026-04-24T08:00:00Z",
                },
            }
        ),
        ok({"status": "ok"}),
        failure(503, None),
    )
    fresh = await client.freshness()
    assert fresh.status == "ok"
    assert str(fresh.latest_ready_date) == "2026-04-23"
    assert await client.health() is True
    assert "Authorization" not in api.requests[1].headers
    assert await client.health() is False
    assert len(api.requests) == 3  # health never retries


async def test_one_debug_line_per_request(
    client: TrendTrackClient, api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request logs method, route template, status and credits at debug."""
    api.reply(ok({"requestId": "r", "data": item_json()}, credits=1))
    with caplog.at_level(logging.DEBUG, logger="watcher.trendtrack"):
        await client.get_item("tiktok_7078586231734521001")
    lines = [r.getMessage() for r in caplog.records if r.name == "watcher.trendtrack"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /v1/tiktok/library/{itemId} -> 200 credits=1")


async def test_base_url_with_v1_suffix_is_normalised(api: FakeApi) -> None:
    """A base URL given with /v1 does not double the prefix."""
    api.reply(ok(page_json([])))
    async with TrendTrackClient(
        "https://api.test/v1/", API_KEY, transport=httpx.MockTransport(api)
    ) as client:
        await client.list_library(ListParams())
    assert str(api.requests[0].url) == "https://api.test/v1/tiktok/library"


def test_constructor_refuses_nonsense() -> None:
    """An empty key or non-positive limits fail at construction."""
    with pytest.raises(ValueError, match="api_key"):
        TrendTrackClient(BASE_URL, "")
    with pytest.raises(ValueError, match="max_concurrency"):
        TrendTrackClient(BASE_URL, API_KEY, max_concurrency=0)


# -- pagination --------------------------------------------------------------------------


def _paged(items: list[dict[str, Any]]) -> Any:
    """A handler serving ``items`` by page/limit like the real API."""

    def route(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        limit = int(request.url.params.get("limit", "25"))
        rows = items[(page - 1) * limit : page * limit]
        return ok(page_json(rows, page=page, limit=limit, total=len(items)), credits=len(rows))

    return route


async def test_count_reads_the_total_past_the_end_for_free(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """count() asks a page past the end with limit 1 and costs no credit."""
    api.route = _paged([item_json(n) for n in range(7)])
    assert await client.count(ListParams(search="x", limit=50)) == 7
    params = api.requests[0].url.params
    assert (params["page"], params["limit"], params["search"]) == ("10000", "1", "x")
    assert len(api.requests) == 1
    assert client.meter.total_used == 0


async def test_count_falls_back_to_counting_rows(client: TrendTrackClient, api: FakeApi) -> None:
    """Without a total (or with page refused) count() pages through and counts rows."""
    items = [item_json(n) for n in range(60)]

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.params["page"] == "10000":
            return failure(400, "validation_error", details=[{"field": "query-string.page"}])
        body = _paged(items)(request).json()
        body["pagination"] = None
        return ok(body)

    api.route = route
    assert await client.count(ListParams()) == 60
    assert [r.url.params["page"] for r in api.requests] == ["10000", "1", "2"]


async def test_count_propagates_other_validation_errors(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """A 400 about something other than ``page`` is the caller's problem."""
    api.reply(failure(400, "validation_error", details=[{"field": "body.language"}]))
    with pytest.raises(ValidationFailed):
        await client.count(QueryBody(language="xx"))
    assert len(api.requests) == 1


async def test_pages_iterate_to_the_last_page(client: TrendTrackClient, api: FakeApi) -> None:
    """pages() yields every page once and stops at totalPages."""
    api.route = _paged([item_json(n) for n in range(5)])
    pages = [p async for p in client.pages(ListParams(limit=2))]
    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert [p.page for p in pages] == [1, 2, 3]


async def test_pages_respect_max_pages_and_the_query_route(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """max_pages bounds the walk; QueryBody pages go to the POST route."""

    def route(request: httpx.Request) -> httpx.Response:
        page = json.loads(request.content)["page"]
        return ok(page_json([item_json(page)], page=page, limit=1, total=10))

    api.route = route
    pages = [p async for p in client.pages(QueryBody(limit=1), max_pages=2)]
    assert len(pages) == 2
    assert [r.method for r in api.requests] == ["POST", "POST"]
    assert [api.body(i)["page"] for i in range(2)] == [1, 2]


async def test_pages_stop_when_the_server_ignores_page(
    client: TrendTrackClient, api: FakeApi
) -> None:
    """A server answering the same rows for every page does not loop forever."""
    body = page_json([item_json(1), item_json(2)], limit=2)
    body["pagination"] = {}
    api.reply(ok(body))
    pages = [p async for p in client.pages(ListParams(limit=2))]
    assert len(pages) == 1
    assert len(api.requests) == 2


async def test_one_bad_optional_field_drops_the_field_not_the_item(
    client: TrendTrackClient, api: FakeApi, caplog: pytest.LogCaptureFixture
) -> None:
    """``metrics.likes: "lots"`` keeps the item (views and all) without its likes (issue 15 #13)."""
    bad = item_json(2)
    bad["metrics"]["likes"] = "lots"
    bad["content"]["hashtags"] = ["ok", {"not": "a tag"}]
    api.reply(ok(page_json([item_json(1), bad])))
    with caplog.at_level(logging.WARNING, logger="watcher.trendtrack"):
        page = await client.list_library(ListParams())
    assert page.skipped == 0
    [_, kept] = page.items
    assert kept.id == bad["id"]
    assert kept.likes is None
    assert kept.views == bad["metrics"]["views"]
    assert "dropped malformed field(s) content.hashtags.1, metrics.likes" in caplog.text
