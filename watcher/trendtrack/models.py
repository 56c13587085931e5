"""Pydantic models of the API's response bodies, and their conversion to domain ``Item``.

Real data has gaps, so every field but ``id`` is optional and unknown fields are ignored.
Enum-like strings (``type``, ``status``) stay plain strings here so a new value never sinks
an item; ``to_item`` maps the ones the domain knows. A page is validated item by item:
a malformed item is logged and skipped, never the whole page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from watcher.models import Item, ItemStatus, ItemType

logger = logging.getLogger("watcher.trendtrack")


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A timestamp in UTC; a naive one from the server is taken to be UTC already."""


class ApiModel(BaseModel):
    """Base of every response model: camelCase aliases, unknown fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        coerce_numbers_to_str=True,
    )


class MediaEntry(ApiModel):
    type: str | None = None
    url: str | None = None
    order: int | None = None


class Media(ApiModel):
    type: str | None = None
    thumbnail_url: str | None = None
    media_url: str | None = None
    video_url: str | None = None
    image_urls: list[str | None] | None = None
    medias: list[MediaEntry | None] | None = None
    duration_sec: float | None = None
    media_count: int | None = None
    image_count: int | None = None


class Music(ApiModel):
    id: str | None = None
    title: str | None = None
    author: str | None = None


class Content(ApiModel):
    description: str | None = None
    language: str | None = None
    category: str | None = None
    hashtags: list[str | None] | None = None
    music: Music | None = None


class ApiMetrics(ApiModel):
    views: int | None = None
    likes: int | None = None
    comments: int | None = None
    saves: int | None = None
    shares: int | None = None
    reposts: int | None = None
    engagement_rate: float | None = None
    rank: int | None = None
    rank_percent: float | None = None
    relevance_score: float | None = None
    delta_rank3d: int | None = Field(default=None, alias="deltaRank3d")
    delta_rank7d: int | None = Field(default=None, alias="deltaRank7d")
    delta_rank14d: int | None = Field(default=None, alias="deltaRank14d")
    delta_rank30d: int | None = Field(default=None, alias="deltaRank30d")


class Profile(ApiModel):
    id: str | None = None
    handle: str | None = None
    name: str | None = None
    avatar_url: str | None = None
    bio: str | None = None
    bio_url: str | None = None
    account_type: str | None = None
    sec_uid: str | None = None
    followers: int | None = None
    following: int | None = None
    total_tik_toks: int | None = Field(default=None, alias="totalTikToks")
    new_tik_toks: int | None = Field(default=None, alias="newTikToks")
    percent_ads: float | None = None
    views: int | None = None
    likes: int | None = None
    page_creation: str | None = None


class Shop(ApiModel):
    id: str | None = None
    domain: str | None = None
    name: str | None = None
    logo_url: str | None = None
    favicon_url: str | None = None
    country_code: str | None = None
    monthly_visits: int | None = None
    traffic_growth30d: float | None = Field(default=None, alias="trafficGrowth30d")
    products_count: int | None = None
    google_category_ids: list[str | None] | None = None


class Pin(ApiModel):
    is_current: bool | None = None
    first_pinned_at: UtcDatetime | None = None
    last_pinned_at: UtcDatetime | None = None
    last_unpinned_at: UtcDatetime | None = None


class PageSnapshot(ApiModel):
    recorded_at: UtcDatetime | None = None
    ads_count: int | None = None
    organic_count: int | None = None
    total_tik_toks: int | None = Field(default=None, alias="totalTikToks")
    daily_views: int | None = None
    daily_likes: int | None = None
    daily_followers: int | None = None


class Links(ApiModel):
    tiktok_url: str | None = None
    profile_url: str | None = None


class Source(ApiModel):
    network: str | None = None
    source_type: str | None = None
    tiktok_page_id: str | None = None
    website_id: str | None = None
    domain: str | None = None


class ApiItem(ApiModel):
    """One library item as served; ``links`` and ``source`` come on the detail route only."""

    id: Annotated[str, Field(min_length=1)]
    tiktok_id: str | None = None
    type: str | None = None
    status: str | None = None
    is_pinned: bool | None = None
    published_at: UtcDatetime | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    days_running: int | None = None
    media: Media | None = None
    content: Content | None = None
    metrics: ApiMetrics | None = None
    profile: Profile | None = None
    shop: Shop | None = None
    pin: Pin | None = None
    page_snapshot: PageSnapshot | None = None
    indexed_at: UtcDatetime | None = None
    links: Links | None = None
    source: Source | None = None


class Pagination(ApiModel):
    page: int | None = None
    limit: int | None = None
    total: int | None = None
    total_pages: int | None = None


class RecurringCredits(ApiModel):
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None


class TopupCredits(ApiModel):
    balance: int | None = None


class Usage(ApiModel):
    """``GET /v1/usage``: the ``credits`` object, plus the response's request id."""

    request_id: str | None = None
    balance: int | None = None
    recurring: RecurringCredits | None = None
    topup: TopupCredits | None = None
    total_remaining: int | None = None


class ApiFreshness(ApiModel):
    """``GET /v1/system/freshness``: the ``data`` object, plus the top-level ``status``."""

    status: str | None = None
    latest_ready_date: date | None = None
    latest_scheduled_date: date | None = None
    data_freshness_lag_days: int | None = None
    generated_at: UtcDatetime | None = None


@dataclass(frozen=True, slots=True)
class ParsedItems:
    """The items of a page that validated, and how many did not."""

    items: tuple[ApiItem, ...]
    skipped: int


REQUIRED = ("id",)  # an item without a valid id is skipped; any other bad field is dropped
_MAX_REPAIRS = 5


def parse_items(raw: Sequence[object], *, request_id: str | None = None) -> ParsedItems:
    """Validate each entry of ``data``; a malformed optional field is dropped (logged),
    an entry without a valid ``id`` is skipped (logged)."""
    items: list[ApiItem] = []
    skipped = 0
    for index, entry in enumerate(raw):
        item_id = entry.get("id") if isinstance(entry, dict) else None
        item, dropped, error = _validate_dropping(entry)
        if item is None:
            skipped += 1
            logger.warning(
                "skipped malformed item #%d (id=%r, requestId=%s): %s",
                index,
                item_id,
                request_id,
                error,
            )
            continue
        if dropped:
            logger.warning(
                "item %r (requestId=%s): dropped malformed field(s) %s",
                item_id,
                request_id,
                ", ".join(dropped),
            )
        items.append(item)
    return ParsedItems(tuple(items), skipped)


def _validate_dropping(entry: object) -> tuple[ApiItem | None, list[str], str]:
    """The item, the dotted names of the fields dropped to get it, or None and why."""
    dropped: list[str] = []
    for _ in range(_MAX_REPAIRS):
        try:
            return ApiItem.model_validate(entry), dropped, ""
        except ValidationError as exc:
            locs = [tuple(err["loc"]) for err in exc.errors()]
            if not isinstance(entry, dict) or any(not loc or loc[0] in REQUIRED for loc in locs):
                return None, dropped, _summary(exc)
            for loc in locs:
                entry = _drop(entry, loc)
                dropped.append(".".join(str(p) for p in loc))
    return None, dropped, "too many malformed fields"


def _drop(value: object, loc: tuple[int | str, ...]) -> object:
    """A copy of ``value`` without the element at ``loc`` (a list element becomes None)."""
    if not loc:
        return None
    head, rest = loc[0], loc[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if head in copy:
            if rest:
                copy[head] = _drop(copy[head], rest)
            else:
                del copy[head]
        return copy
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        items = list(value)
        items[head] = _drop(items[head], rest) if rest else None
        return items
    return value


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<item>'}: {err['msg']}"
        for err in exc.errors()[:3]
    )


def parse_pagination(raw: object) -> Pagination:
    """The ``pagination`` object, or an empty one if it is missing or malformed."""
    if raw is None:
        return Pagination()
    try:
        return Pagination.model_validate(raw)
    except ValidationError as exc:
        logger.warning("ignored malformed pagination: %s", _summary(exc))
        return Pagination()


def _tiktok_id(item: ApiItem) -> str | None:
    if item.tiktok_id:
        return item.tiktok_id
    digits = item.id.removeprefix("tiktok_")
    return digits if digits.isdigit() else None


_E = TypeVar("_E", ItemType, ItemStatus)


def _enum_or_none(cls: type[_E], value: str | None) -> _E | None:
    try:
        return cls(value) if value is not None else None
    except ValueError:
        return None


def to_item(api: ApiItem) -> Item:
    """Reduce an API item to the domain ``Item``; unknown enum values become ``None``."""
    metrics = api.metrics or ApiMetrics()
    profile = api.profile or Profile()
    content = api.content or Content()
    shop = api.shop or Shop()
    pin = api.pin or Pin()
    pinned = api.is_pinned if api.is_pinned is not None else pin.is_current
    return Item(
        id=api.id,
        tiktok_id=_tiktok_id(api),
        type=_enum_or_none(ItemType, api.type),
        status=_enum_or_none(ItemStatus, api.status),
        pinned=pinned,
        published_at=api.published_at,
        created_at=api.created_at,
        updated_at=api.updated_at,
        indexed_at=api.indexed_at,
        last_pinned_at=pin.last_pinned_at,
        last_unpinned_at=pin.last_unpinned_at,
        rank=metrics.rank,
        views=metrics.views,
        likes=metrics.likes,
        comments=metrics.comments,
        shares=metrics.shares,
        engagement_rate=metrics.engagement_rate,
        days_running=api.days_running,
        handle=profile.handle,
        profile_name=profile.name,
        followers=profile.followers,
        caption=content.description,
        language=content.language,
        hashtags=tuple(tag for tag in content.hashtags or () if tag),
        music_title=content.music.title if content.music else None,
        shop_id=shop.id,
        shop_domain=shop.domain,
        shop_name=shop.name,
        thumbnail_url=api.media.thumbnail_url if api.media else None,
    )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of library items, with what it cost."""

    items: tuple[Item, ...]
    total: int | None
    page: int
    limit: int
    total_pages: int | None
    credits_used: int | None
    request_id: str | None
    skipped: int = 0

    @property
    def has_more(self) -> bool:
        """Whether a next page may hold rows."""
        rows = len(self.items) + self.skipped
        if rows == 0:
            return False
        if self.total_pages is not None:
            return self.page < self.total_pages
        if self.total is not None:
            return self.page * self.limit < self.total
        return rows >= self.limit
