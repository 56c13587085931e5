"""Factories, a scripted fake API, a recording sleep and a fake clock for client tests."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

API_KEY = "tt_live_SECRET_0123456789abcdef"
BASE_URL = "https://api.test"

Reply = httpx.Response | Exception


def item_json(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """A complete library item as the API serves it (every documented field)."""
    item: dict[str, Any] = {
        "id": f"tiktok_70785862317345210{n:02d}",
        "tiktokId": f"70785862317345210{n:02d}",
        "type": "ad",
        "status": "active",
        "isPinned": False,
        "publishedAt": "2026-04-20T10:00:00Z",
        "createdAt": "2026-04-20T11:00:00Z",
        "updatedAt": "2026-04-21T00:00:00Z",
        "daysRunning": 3,
        "media": {
            "type": "video",
            "thumbnailUrl": "https://cdn.test/t.jpg",
            "mediaUrl": "https://cdn.test/m.mp4",
            "videoUrl": "https://cdn.test/v.mp4",
            "imageUrls": ["https://cdn.test/i.jpg"],
            "medias": [{"type": "video", "url": "https://cdn.test/v.mp4", "order": 0}],
            "durationSec": 21.5,
            "mediaCount": 1,
            "imageCount": 1,
        },
        "content": {
            "description": "Protein gummies that taste good",
            "language": "en",
            "category": "Food",
            "hashtags": ["protein", "gummies"],
            "music": {"id": "m1", "title": "Original sound", "author": "gymbrand"},
        },
        "metrics": {
            "views": 120000,
            "likes": 5000,
            "comments": 120,
            "saves": 40,
            "shares": 33,
            "reposts": 2,
            "engagementRate": 4.3,
            "rank": 12,
            "rankPercent": 1.2,
            "relevanceScore": 0.8,
            "deltaRank3d": 4,
            "deltaRank7d": 10,
            "deltaRank14d": -2,
            "deltaRank30d": 40,
        },
        "profile": {
            "id": "p1",
            "handle": "@gymbrand",
            "name": "Gym Brand",
            "avatarUrl": "https://cdn.test/a.jpg",
            "bio": "We make gummies",
            "bioUrl": "https://gym.test",
            "accountType": "business",
            "secUid": "MS4w",
            "followers": 9000,
            "following": 12,
            "totalTikToks": 140,
            "newTikToks": 3,
            "percentAds": 20.5,
            "views": 1000000,
            "likes": 50000,
            "pageCreation": "2021-03-01T00:00:00Z",
        },
        "shop": {
            "id": "9b2f6a2e-8f7e-4c53-9a3b-2b1f5d7c0e11",
            "domain": "gym.test",
            "name": "Gym Shop",
            "logoUrl": "https://cdn.test/l.png",
            "faviconUrl": "https://cdn.test/f.ico",
            "countryCode": "US",
            "monthlyVisits": 30000,
            "trafficGrowth30d": 12.5,
            "productsCount": 14,
            "googleCategoryIds": ["412"],
        },
        "pin": {
            "isCurrent": False,
            "firstPinnedAt": "2026-04-01T00:00:00Z",
            "lastPinnedAt": "2026-04-02T00:00:00Z",
            "lastUnpinnedAt": "2026-04-10T00:00:00Z",
        },
        "pageSnapshot": {
            "recordedAt": "2026-04-21T00:00:00Z",
            "adsCount": 28,
            "organicCount": 112,
            "totalTikToks": 140,
            "dailyViews": 3000,
            "dailyLikes": 120,
            "dailyFollowers": 15,
        },
        "indexedAt": "2026-04-20T18:00:00Z",
    }
    item.update(overrides)
    return item


def page_json(
    items: list[Any], *, page: int = 1, limit: int = 25, total: int | None = None
) -> dict[str, Any]:
    """A list-route body around ``items``."""
    total = len(items) if total is None else total
    return {
        "requestId": f"req_page_{page}",
        "data": items,
        "pagination": {
            "page": page,
            "limit": limit,
            "total": total,
            "totalPages": -(-total // limit),
        },
    }


def ok(
    body: Any, *, credits: int | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A 200 JSON response, with credit headers when ``credits`` is given."""
    hdrs = {"X-Request-Id": "req_hdr", **(headers or {})}
    if credits is not None:
        hdrs.update(
            {
                "X-Usage-Cost": str(credits),
                "X-Credits-Used": str(credits),
                "X-Credits-Source": "recurring",
            }
        )
    return httpx.Response(200, json=body, headers=hdrs)


def failure(
    status: int,
    code: str | None,
    *,
    details: list[dict[str, Any]] | None = None,
    message: str = "nope",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """An error envelope response."""
    error: dict[str, Any] = {"code": code, "message": message, "requestId": f"req_{status}"}
    if details is not None:
        error["details"] = {"validationErrors": details}
    return httpx.Response(status, json={"error": error}, headers=headers or {})


class FakeApi:
    """A MockTransport handler that replays scripted replies and records every request.

    The last scripted reply repeats once the script runs out; ``route`` overrides the
    script with a function of the request.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: deque[Reply] = deque()
        self.route: Callable[[httpx.Request], Reply] | None = None

    def reply(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.route(request) if self.route else self._next()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _next(self) -> Reply:
        if not self.script:
            raise AssertionError(f"unexpected request {request_line(self.requests[-1])}")
        return self.script.popleft() if len(self.script) > 1 else self.script[0]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def request_line(request: httpx.Request) -> str:
    return f"{request.method} {request.url}"


class Sleeps:
    """An injected ``sleep`` that returns at once and records every delay."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    """A monotonic clock that only moves when told (or when ``Sleeps`` is tied to it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
