"""List-route parameters: validation into a ``ListQuery``, then filter, sort and page (pure).

Validation collects every problem, not just the first, in the API's error shape
(``field`` = ``query-string.<name>`` or ``body.<name>``, class-validator style messages).
In documented-only mode the [chosen] parameters are refused like unknown ones.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from watcher.simulator.clock import parse_iso
from watcher.simulator.entities import SimItem
from watcher.simulator.ordering import SORT_KEYS, sort_items
from watcher.simulator.world import World

ENUMS: dict[str, tuple[str, ...]] = {
    "keywordMode": ("any", "all"),
    "searchArea": ("all", "caption", "profile", "hashtag", "music"),
    "type": ("all", "ad", "organic"),
    "status": ("all", "active", "inactive"),
    "pinned": ("yes", "no"),
    "sortBy": (
        "relevance",
        "newest",
        "updatedAt",
        "views",
        "likes",
        "comments",
        "shares",
        "saves",
        "engagementRate",
        "daysRunning",
        "followers",
    ),
    "order": ("asc", "desc"),
}
INTS: dict[str, tuple[int, int | None]] = {
    "page": (1, None),
    "limit": (1, 50),
    "minViews": (0, None),
    "maxViews": (0, None),
    "minLikes": (0, None),
}
DATES = ("updatedAfter", "publishedAfter", "publishedBefore")
COMMON = (
    "searchArea",
    "type",
    "status",
    "pinned",
    "updatedAfter",
    "sortBy",
    "order",
    "page",
    "limit",
)
LIBRARY_PARAMS = frozenset({"search", "keywordMode", *COMMON})
SHOP_PARAMS = frozenset(COMMON)
BODY_KEYS = frozenset(
    {
        *LIBRARY_PARAMS,
        "minViews",
        "maxViews",
        "minLikes",
        "minEngagementRate",
        "language",
        "publishedAfter",
        "publishedBefore",
    }
)
RESULT_WINDOW = 10_000
"""Elasticsearch's ``max_result_window``: enforced in documented-only mode."""
CHOSEN_ON_GET = frozenset({"updatedAfter", "pinned", "keywordMode"})
CHOSEN_IN_BODY = frozenset(
    {
        "updatedAfter",
        "maxViews",
        "minLikes",
        "minEngagementRate",
        "language",
        "publishedAfter",
        "publishedBefore",
    }
)
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One ``validationErrors`` entry."""

    field: str
    location: str
    expected: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"field": self.field, "location": self.location, "expected": list(self.expected)}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list request; defaults are the API's."""

    search: tuple[str, ...] = ()
    keyword_mode: str = "any"
    search_area: str = "all"
    type: str = "all"
    status: str = "all"
    pinned: bool | None = None
    updated_after: datetime | None = None
    sort_by: str = "newest"
    order: str = "desc"
    page: int = 1
    limit: int = 25
    min_views: int | None = None
    max_views: int | None = None
    min_likes: int | None = None
    min_engagement_rate: float | None = None
    language: str | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None


@dataclass(slots=True)
class _Collector:
    location: str
    errors: list[FieldError] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.errors.append(FieldError(f"{self.location}.{name}", self.location, (message,)))


def _split_keywords(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def parse_query_string(
    pairs: Sequence[tuple[str, str]], *, shop_route: bool, documented_only: bool
) -> ListQuery | list[FieldError]:
    """Validate GET list parameters (repeated ``search`` params and commas both add keywords)."""
    out = _Collector("query-string")
    allowed = SHOP_PARAMS if shop_route else LIBRARY_PARAMS
    values: dict[str, object] = {}
    searches: list[str] = []
    for name, raw in pairs:
        if name not in allowed or (documented_only and name in CHOSEN_ON_GET):
            out.add(name, f"property {name} should not exist")
        elif name == "search":
            searches.append(raw)
        else:
            values[name] = raw
    if searches:
        values["search"] = _split_keywords(searches)
    return _build(values, out, from_text=True, window=documented_only)


def parse_body(raw: bytes, *, documented_only: bool) -> ListQuery | list[FieldError]:
    """Validate the JSON body of ``POST /v1/tiktok/library/query``."""
    out = _Collector("body")
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return [FieldError("body", "body", ("body must be valid JSON",))]
    if not isinstance(body, dict):
        return [FieldError("body", "body", ("body must be a JSON object",))]
    values: dict[str, object] = {}
    for name, value in body.items():
        if name not in BODY_KEYS or (documented_only and name in CHOSEN_IN_BODY):
            out.add(name, f"property {name} should not exist")
        elif value is not None:
            values[name] = value
    search = values.get("search")
    if search is not None:
        if not isinstance(search, list):
            out.add("search", "search must be an array")
            del values["search"]
        elif not all(isinstance(word, str) for word in search):
            out.add("search", "each value in search must be a string")
            del values["search"]
        else:
            values["search"] = tuple(word.strip() for word in search if word.strip())
    return _build(values, out, from_text=False, window=documented_only)


def _build(
    values: Mapping[str, object], out: _Collector, *, from_text: bool, window: bool = False
) -> ListQuery | list[FieldError]:
    enums: dict[str, str] = {}
    ints: dict[str, int] = {}
    dates: dict[str, datetime] = {}
    rate: float | None = None
    language: str | None = None
    for name, value in values.items():
        if name in ENUMS:
            choices = ENUMS[name]
            if isinstance(value, str) and value in choices:
                enums[name] = value
            else:
                out.add(name, f"{name} must be one of the following values: {', '.join(choices)}")
        elif name in INTS:
            number = _integer(value, from_text=from_text)
            low, high = INTS[name]
            if number is None:
                out.add(name, f"{name} must be an integer number")
            elif number < low:
                out.add(name, f"{name} must not be less than {low}")
            elif high is not None and number > high:
                out.add(name, f"{name} must not be greater than {high}")
            else:
                ints[name] = number
        elif name in DATES:
            moment = parse_iso(value) if isinstance(value, str) else None
            if moment is None:
                out.add(name, f"{name} must be a valid ISO 8601 date string")
            else:
                dates[name] = moment
        elif name == "minEngagementRate":
            rate = _number(value, from_text=from_text)
            if rate is None or rate < 0:
                out.add(name, f"{name} must be a number not less than 0")
        elif name == "language":
            if isinstance(value, str) and value.strip():
                language = value.strip().lower()
            else:
                out.add(name, f"{name} must be a non-empty string")
    if window and ints.get("page", 1) * ints.get("limit", 25) > RESULT_WINDOW:
        out.add("page", f"page x limit must not be greater than {RESULT_WINDOW} (result window)")
    if out.errors:
        return out.errors
    search = values.get("search", ())
    pinned = enums.get("pinned")
    return ListQuery(
        search=tuple(str(word) for word in search) if isinstance(search, tuple) else (),
        keyword_mode=enums.get("keywordMode", "any"),
        search_area=enums.get("searchArea", "all"),
        type=enums.get("type", "all"),
        status=enums.get("status", "all"),
        pinned=None if pinned is None else pinned == "yes",
        updated_after=dates.get("updatedAfter"),
        sort_by=enums.get("sortBy", "newest"),
        order=enums.get("order", "desc"),
        page=ints.get("page", 1),
        limit=ints.get("limit", 25),
        min_views=ints.get("minViews"),
        max_views=ints.get("maxViews"),
        min_likes=ints.get("minLikes"),
        min_engagement_rate=rate,
        language=language,
        published_after=dates.get("publishedAfter"),
        published_before=dates.get("publishedBefore"),
    )


def _integer(value: object, *, from_text: bool) -> int | None:
    if from_text:
        return int(value) if isinstance(value, str) and _INTEGER.match(value) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object, *, from_text: bool) -> float | None:
    if from_text:
        return float(value) if isinstance(value, str) and _NUMBER.match(value) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


# selection

Predicate = Callable[[SimItem], bool]


def _keyword_matcher(area: str, keyword: str) -> Predicate:
    """Whether one keyword matches an item in ``area`` (case-insensitive)."""
    word = keyword.lower()
    handle = word.lstrip("@")
    tag = word.lstrip("#")

    def caption(item: SimItem) -> bool:
        return word in item.search_text().caption

    def profile(item: SimItem) -> bool:
        text = item.search_text()
        return handle in text.handle or word in text.name

    def hashtag(item: SimItem) -> bool:
        return tag in item.search_text().hashtags

    def music(item: SimItem) -> bool:
        return word in item.search_text().music

    def anywhere(item: SimItem) -> bool:
        text = item.search_text()
        return word in text.everything or handle in text.handle or tag in text.hashtags

    areas = {"caption": caption, "profile": profile, "hashtag": hashtag, "music": music}
    return areas.get(area, anywhere)


def _filters(q: ListQuery) -> list[Predicate]:
    checks: list[Predicate] = []
    if q.type != "all":
        checks.append(lambda i: i.type == q.type)
    if q.status != "all":
        checks.append(lambda i: i.status == q.status)
    if (pinned := q.pinned) is not None:
        checks.append(lambda i: i.is_pinned is pinned)
    if (updated_after := q.updated_after) is not None:
        checks.append(lambda i: i.updated_at > updated_after)
    if (min_views := q.min_views) is not None:
        checks.append(lambda i: i.views >= min_views)
    if (max_views := q.max_views) is not None:
        checks.append(lambda i: i.views <= max_views)
    if (min_likes := q.min_likes) is not None:
        checks.append(lambda i: i.likes >= min_likes)
    if (min_rate := q.min_engagement_rate) is not None:
        checks.append(lambda i: i.engagement_rate >= min_rate)
    if (language := q.language) is not None:
        checks.append(lambda i: (i.language or "").lower() == language)
    if (published_after := q.published_after) is not None:
        checks.append(lambda i: i.published_at > published_after)
    if (published_before := q.published_before) is not None:
        checks.append(lambda i: i.published_at < published_before)
    return checks


def _matching_ids(world: World, area: str, keyword: str) -> frozenset[int]:
    """Ids of every item ``keyword`` matches in ``area``; cached until new items arrive."""
    cache_key = (area, keyword.lower())
    count = len(world.items)
    cached = world.search_cache.get(cache_key)
    if cached is None or cached[0] != count:
        matcher = _keyword_matcher(area, keyword)
        ids = frozenset(tid for tid, item in world.items.items() if matcher(item))
        cached = (count, ids)
        world.search_cache[cache_key] = cached
    return cached[1]


def _shuffle_ties(items: list[SimItem], sort_by: str, rng: random.Random) -> list[SimItem]:
    """``items`` with every run of equal sort keys in a random order (an unstable sort)."""
    key = SORT_KEYS.get(sort_by, SORT_KEYS["newest"])
    out: list[SimItem] = []
    run: list[SimItem] = []
    for item in items:
        if run and key(run[0]) != key(item):
            rng.shuffle(run)
            out.extend(run)
            run = []
        run.append(item)
    rng.shuffle(run)
    out.extend(run)
    return out


def select(
    world: World,
    query: ListQuery,
    shop_id: str | None = None,
    *,
    shuffle_ties: random.Random | None = None,
) -> tuple[list[SimItem], int]:
    """The requested page of indexed items and the total number matching (with
    ``shuffle_ties``, equal sort keys come back in any order)."""
    descending = query.order == "desc"
    if shop_id is not None:
        in_shop = (item for item in world.items_by_shop.get(shop_id, ()) if item.in_index)
        pool = sort_items(in_shop, query.sort_by, descending)
    else:
        pool = world.sorted_items(query.sort_by, descending)
    checks = _filters(query)
    matches = [item for item in pool if all(check(item) for check in checks)] if checks else pool
    if query.search and shop_id is None:
        hits = [_matching_ids(world, query.search_area, word) for word in query.search]
        needed = len(hits) if query.keyword_mode == "all" else 1
        scored = []
        for item in matches:
            score = 0
            for ids in hits:
                score += item.tiktok_id in ids
            if score >= needed:
                scored.append((score, item))
        if query.sort_by == "relevance":
            scored.sort(key=lambda pair: pair[0], reverse=descending)
        matches = [item for _, item in scored]
    if shuffle_ties is not None and query.sort_by != "relevance":
        matches = _shuffle_ties(list(matches), query.sort_by, shuffle_ties)
    start = (query.page - 1) * query.limit
    return matches[start : start + query.limit], len(matches)
