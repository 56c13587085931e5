"""The async TrendTrack API client: the only place watcher talks HTTP.

Every request goes through one path (``_request``): a concurrency semaphore, a pause while
the server's rate-limit window is exhausted (``pacing.RateWindow``), a client-side leaky
bucket (aiolimiter), a timeout, credit accounting, and translation of every failure into
``watcher.errors``. Retries (tenacity) wrap that path: 429 waits ``Retry-After``; 5xx,
timeouts, dropped connections and invalid JSON back off exponentially with jitter; other
errors never retry. The API key lives in one attribute and is never logged, repr'd or put
in a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from watcher.errors import (
    ApiError,
    ApiUnavailable,
    ParameterError,
    RateLimited,
    ValidationFailed,
)
from watcher.models import Item
from watcher.trendtrack.meter import CreditMeter, UsageCallback, UsageRecord
from watcher.trendtrack.models import (
    ApiFreshness,
    ApiItem,
    Page,
    Usage,
    parse_items,
    parse_pagination,
    to_item,
)
from watcher.trendtrack.pacing import MAX_WAIT, RateWindow
from watcher.trendtrack.params import MAX_LIMIT, ListParams, QueryBody
from watcher.trendtrack.responses import RETRYABLE, error_from, json_object

logger = logging.getLogger("watcher.trendtrack")

USER_AGENT: Final = "watcher/0.1 (+trendtrack client)"
DEFAULT_LIMIT: Final = 25
COUNT_PROBE_PAGE: Final = 10_000
"""Past the end of any scope under 10,000 rows, and inside the result window
(page x limit <= 10,000 at limit 1): the true total for 0 credits (1 above it)."""
"""A page number past the end of any result set: the server then returns only the total."""

LIBRARY: Final = "/v1/tiktok/library"
QUERY: Final = "/v1/tiktok/library/query"
ITEM: Final = "/v1/tiktok/library/{itemId}"
SHOP: Final = "/v1/shops/{shopId}/tiktok/library"
USAGE: Final = "/v1/usage"
FRESHNESS: Final = "/v1/system/freshness"
HEALTH: Final = "/v1/health"

Sleep = Callable[[float], Awaitable[None]]
Params = ListParams | QueryBody


@dataclass(frozen=True, slots=True)
class _Reply:
    payload: dict[str, object]
    request_id: str | None
    credits_used: int | None


def rejects_parameter(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is the server refusing parameter ``name`` (e.g. ``updatedAfter``)."""
    return isinstance(exc, ValidationFailed) and exc.rejects(name)


class TrendTrackClient:
    """Async client of the TrendTrack Public API's TikTok library; use ``async with``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_requests_per_minute: int = 60,
        max_concurrency: int = 4,
        timeout: float = 30.0,
        max_retries: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_usage: UsageCallback | None = None,
    ) -> None:
        if not api_key or not isinstance(api_key, str):
            raise ValueError("api_key must be a non-empty string")
        if max_requests_per_minute < 1 or max_concurrency < 1:
            raise ValueError("max_requests_per_minute and max_concurrency must be >= 1")
        if timeout <= 0 or max_retries < 0:
            raise ValueError("timeout must be > 0 and max_retries >= 0")
        self._base_url = base_url.rstrip("/").removesuffix("/v1")
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        self._on_usage = on_usage
        self._limiter = AsyncLimiter(max_requests_per_minute, 60)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._window = RateWindow(clock, sleep)
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )
        self.meter = CreditMeter()

    def __repr__(self) -> str:
        return f"TrendTrackClient(base_url={self._base_url!r}, api_key=<redacted>)"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- routes ---------------------------------------------------------------------------

    async def list_library(self, params: ListParams) -> Page:
        """``GET /v1/tiktok/library``."""
        reply = await self._request("GET", LIBRARY, LIBRARY, params=params.to_query())
        return self._page(reply, params)

    async def query_library(self, body: QueryBody) -> Page:
        """``POST /v1/tiktok/library/query``."""
        reply = await self._request("POST", QUERY, QUERY, json=body.to_json())
        return self._page(reply, body)

    async def shop_library(self, shop_id: str, params: ListParams) -> Page:
        """``GET /v1/shops/{shopId}/tiktok/library``; this route takes no ``search``."""
        if params.search or params.keyword_mode is not None:
            raise ParameterError("the shop route takes no search or keywordMode")
        path = SHOP.replace("{shopId}", _segment(shop_id, "shop id"))
        reply = await self._request("GET", SHOP, path, params=params.to_query())
        return self._page(reply, params)

    async def get_api_item(self, item_id: str) -> ApiItem:
        """``GET /v1/tiktok/library/{itemId}`` as served, with ``links`` and ``source``.

        ``item_id`` is ``tiktok_<digits>`` or the bare digits. Raises ``NotFound``.
        """
        path = ITEM.replace("{itemId}", _segment(item_id, "item id"))
        reply = await self._request("GET", ITEM, path)
        data = reply.payload.get("data")
        parsed = parse_items([data], request_id=reply.request_id)
        if not parsed.items:
            raise ApiUnavailable(
                f"GET {ITEM}: the item in the response is malformed",
                status=200,
                request_id=reply.request_id,
            )
        return parsed.items[0]

    async def get_item(self, item_id: str) -> Item:
        """One item by composite id or bare digits; raises ``NotFound`` on 404."""
        return to_item(await self.get_api_item(item_id))

    async def usage(self) -> Usage:
        """``GET /v1/usage``: the credit balance (free); also updates ``meter.balance``."""
        reply = await self._request("GET", USAGE, USAGE)
        credits = reply.payload.get("credits")
        usage = Usage.model_validate(
            {**(credits if isinstance(credits, dict) else {}), "requestId": reply.request_id}
        )
        self.meter.note_balance(
            usage.total_remaining if usage.total_remaining is not None else usage.balance
        )
        return usage

    async def freshness(self) -> ApiFreshness:
        """``GET /v1/system/freshness``: when the dataset was last refreshed (free)."""
        reply = await self._request("GET", FRESHNESS, FRESHNESS)
        data = reply.payload.get("data")
        return ApiFreshness.model_validate(
            {**(data if isinstance(data, dict) else {}), "status": reply.payload.get("status")}
        )

    async def health(self) -> bool:
        """``GET /v1/health``, one attempt without the key: whether the API answers 2xx."""
        try:
            await self._attempt("GET", HEALTH, HEALTH, None, None, auth=False)
        except ApiError:
            return False
        return True

    # -- pagination -----------------------------------------------------------------------

    async def fetch(self, params: Params, *, shop_id: str | None = None) -> Page:
        """One page from the route ``params`` belong to (the shop route if ``shop_id``)."""
        if isinstance(params, QueryBody):
            if shop_id is not None:
                raise ParameterError("the shop route takes ListParams, not a QueryBody")
            return await self.query_library(params)
        if shop_id is not None:
            return await self.shop_library(shop_id, params)
        return await self.list_library(params)

    async def count(self, params: Params, *, shop_id: str | None = None) -> int:
        """How many rows match, for 0 credits when the server reports a total past the end.

        Asks for a page past the last one (``limit=1``); if the server refuses that page or
        gives no total, counts the rows page by page instead (which costs a credit a row).
        """
        try:
            probe = await self.fetch(params.with_page(COUNT_PROBE_PAGE, limit=1), shop_id=shop_id)
        except ValidationFailed as exc:
            if not exc.rejects("page"):
                raise
            probe = None
        if probe is not None and probe.total is not None:
            return probe.total
        logger.info("the server gave no total; counting rows page by page")
        rows = 0
        async for page in self.pages(params.with_page(1, limit=MAX_LIMIT), shop_id=shop_id):
            rows += len(page.items) + page.skipped
        return rows

    async def pages(
        self, params: Params, *, shop_id: str | None = None, max_pages: int | None = None
    ) -> AsyncIterator[Page]:
        """Pages from ``params.page`` (default 1) on, until the last or ``max_pages``.

        Stops early if the server answers the same rows again (it ignores ``page``).
        """
        current = params if params.page is not None else params.with_page(1)
        previous: tuple[str, ...] | None = None
        fetched = 0
        while True:
            page = await self.fetch(current, shop_id=shop_id)
            ids = tuple(item.id for item in page.items)
            if ids and ids == previous:
                logger.warning("page %d repeats the previous page; stopping", page.page)
                return
            yield page
            fetched += 1
            if not page.has_more or (max_pages is not None and fetched >= max_pages):
                return
            previous = ids
            current = current.with_page((current.page or 1) + 1)

    # -- the request path -----------------------------------------------------------------

    async def _request(
        self,
        method: str,
        route: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json: dict[str, object] | None = None,
    ) -> _Reply:
        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(RETRYABLE),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(method, route, path, params, json, auth=True)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        route: str,
        path: str,
        params: list[tuple[str, str]] | None,
        json: dict[str, object] | None,
        *,
        auth: bool,
    ) -> _Reply:
        where = f"{method} {route}"
        headers = {"Authorization": f"Bearer {self._api_key}"} if auth else {}
        async with self._slots:
            await self._window.wait()
            async with self._limiter:
                started = self._clock()
                try:
                    async with asyncio.timeout(self._timeout):
                        response = await self._http.request(
                            method,
                            path,
                            params=httpx.QueryParams(tuple(params or ())),
                            json=json,
                            headers=headers,
                        )
                except (TimeoutError, httpx.TimeoutException) as exc:
                    raise ApiUnavailable(f"{where}: timed out after {self._timeout:g}s") from exc
                except httpx.RequestError as exc:
                    reason = self._redact(str(exc)) or type(exc).__name__
                    raise ApiUnavailable(f"{where}: {type(exc).__name__}: {reason}") from exc
        record = UsageRecord.from_response(method, route, response)
        self.meter.record(record)
        if self._on_usage is not None:
            self._on_usage(record)
        self._window.note(response)
        logger.debug(
            "%s %s -> %d credits=%s %.0fms requestId=%s",
            method,
            route,
            response.status_code,
            record.credits_used,
            (self._clock() - started) * 1000,
            record.request_id,
        )
        if not response.is_success:
            raise error_from(response, where, self._redact)
        payload = json_object(response, where)
        request_id = payload.get("requestId")
        return _Reply(
            payload=payload,
            request_id=request_id if isinstance(request_id, str) else record.request_id,
            credits_used=record.credits_used,
        )

    def _page(self, reply: _Reply, params: Params) -> Page:
        data = reply.payload.get("data")
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ApiUnavailable(
                f"the page's data is {type(data).__name__}, not a list",
                status=200,
                request_id=reply.request_id,
            )
        parsed = parse_items(data, request_id=reply.request_id)
        pagination = parse_pagination(reply.payload.get("pagination"))
        return Page(
            items=tuple(to_item(item) for item in parsed.items),
            total=pagination.total,
            page=pagination.page or params.page or 1,
            limit=pagination.limit or params.limit or DEFAULT_LIMIT,
            total_pages=pagination.total_pages,
            credits_used=reply.credits_used,
            request_id=reply.request_id,
            skipped=parsed.skipped,
        )

    _backoff = wait_exponential_jitter(initial=1, max=60, jitter=1)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_WAIT)
        return float(self._backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.info("attempt %d failed (%s); retrying in %.1fs", state.attempt_number, exc, delay)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "<redacted>")


def _segment(value: str, what: str) -> str:
    """A path segment; refuses anything that could change the route."""
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "-_" for c in value):
        raise ParameterError(f"{what} must be letters, digits, '-' or '_'; got {value!r}")
    return quote(value, safe="")
