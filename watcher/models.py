"""Domain values shared by detection, storage, rendering and delivery.

Plain frozen dataclasses and enums: no I/O, no library types. The API client converts
its response models into ``Item``; everything downstream works on these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ItemType(StrEnum):
    AD = "ad"
    ORGANIC = "organic"


class ItemStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


# The API's request vocabulary, the one set used by the config schema, the client and
# the planner (the simulator keeps its own copy on purpose: it is an independent fake).


class SearchArea(StrEnum):
    ALL = "all"
    CAPTION = "caption"
    PROFILE = "profile"
    HASHTAG = "hashtag"
    MUSIC = "music"


class TypeFilter(StrEnum):
    AD = "ad"
    ORGANIC = "organic"
    ALL = "all"


class StatusFilter(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    ALL = "all"


class SortBy(StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"
    UPDATED_AT = "updatedAt"
    VIEWS = "views"
    LIKES = "likes"
    COMMENTS = "comments"
    SHARES = "shares"
    SAVES = "saves"
    ENGAGEMENT_RATE = "engagementRate"
    DAYS_RUNNING = "daysRunning"
    FOLLOWERS = "followers"


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


class KeywordMode(StrEnum):
    ANY = "any"
    ALL = "all"


class Pinned(StrEnum):
    YES = "yes"
    NO = "no"


class EventKind(StrEnum):
    """Every event watcher records; the ops kinds go to ``ops_notify`` only."""

    NEW_AD = "new_ad"
    NEW_VIDEO = "new_video"
    PINNED = "pinned"
    UNPINNED = "unpinned"
    RANK_JUMP = "rank_jump"
    AD_STOPPED = "ad_stopped"
    AD_RESUMED = "ad_resumed"
    AD_MILESTONE = "ad_milestone"
    BASELINE = "baseline"
    WATCH_FAILING = "watch_failing"
    WATCH_RECOVERED = "watch_recovered"
    CREDITS_LOW = "credits_low"
    CREDITS_EXHAUSTED = "credits_exhausted"
    BUDGET_EXCEEDED = "budget_exceeded"
    AUTH_REJECTED = "auth_rejected"
    CONFIG_REJECTED = "config_rejected"
    DELIVERY_FAILED = "delivery_failed"
    SILENCE_ENDED = "silence_ended"

    @property
    def is_ops(self) -> bool:
        return self in OPS_KINDS


ITEM_KINDS = frozenset(
    {
        EventKind.NEW_AD,
        EventKind.NEW_VIDEO,
        EventKind.PINNED,
        EventKind.UNPINNED,
        EventKind.RANK_JUMP,
        EventKind.AD_STOPPED,
        EventKind.AD_RESUMED,
        EventKind.AD_MILESTONE,
        EventKind.BASELINE,
    }
)
NOTICE_KINDS = frozenset({EventKind.SILENCE_ENDED})
"""Watcher's own notes to a watch's notifiers (a silence ended): neither items nor ops."""
OPS_KINDS = frozenset(set(EventKind) - ITEM_KINDS - NOTICE_KINDS)


@dataclass(frozen=True, slots=True)
class Item:
    """One row of the TikTok library, reduced to what detection and alerts use.

    Every field but ``id`` may be unknown (None): real data has gaps.
    """

    id: str
    tiktok_id: str | None = None
    type: ItemType | None = None
    status: ItemStatus | None = None
    pinned: bool | None = None
    published_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    indexed_at: datetime | None = None
    last_pinned_at: datetime | None = None
    last_unpinned_at: datetime | None = None
    rank: int | None = None
    views: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    engagement_rate: float | None = None
    days_running: int | None = None
    handle: str | None = None
    profile_name: str | None = None
    followers: int | None = None
    caption: str | None = None
    language: str | None = None
    hashtags: tuple[str, ...] = ()
    music_title: str | None = None
    shop_id: str | None = None
    shop_domain: str | None = None
    shop_name: str | None = None
    thumbnail_url: str | None = None

    @property
    def link(self) -> str | None:
        """The public TikTok URL, built from handle and numeric id."""
        if not self.tiktok_id:
            return None
        handle = (self.handle or "").lstrip("@")
        return f"https://www.tiktok.com/@{handle}/video/{self.tiktok_id}"


@dataclass(frozen=True, slots=True)
class Event:
    """A change detected for one watch, or an ops event about the daemon itself.

    ``key`` is deterministic (watch, kind, item, the change) so re-running a poll never
    records the same event twice. ``figures`` holds the numbers behind it
    (e.g. ``{"rank_before": 48, "rank_after": 7}``), ``item`` a snapshot for alerts.
    """

    key: str
    kind: EventKind
    watch: str
    detected_at: datetime
    item: Item | None = None
    figures: dict[str, object] = field(default_factory=dict)


OpsEvent = Event
"""An ops event is an ``Event`` whose ``watch`` names its subject (a watch, or ``api``)."""


def ops_event(
    kind: EventKind, subject: str, at: datetime, figures: dict[str, object] | None = None
) -> Event:
    """An ops event; its key names the episode (kind, subject, when it opened)."""
    return Event(
        f"ops|{kind.value}|{subject}|{at.isoformat()}", kind, subject, at, None, dict(figures or {})
    )


def item_to_json(item: Item) -> dict[str, object]:
    """A JSON-safe snapshot of an item (datetimes as ISO 8601, enums as values)."""
    out: dict[str, object] = {}
    for name in Item.__slots__:
        value = getattr(item, name)
        if value is None or value == ():
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


_DATETIME_FIELDS = frozenset(
    {"published_at", "created_at", "updated_at", "indexed_at", "last_pinned_at", "last_unpinned_at"}
)


def item_from_json(data: dict[str, object]) -> Item:
    """Inverse of ``item_to_json``; unknown keys are ignored."""
    fields: dict[str, object] = {}
    for name in Item.__slots__:
        if name not in data:
            continue
        value = data[name]
        if name in _DATETIME_FIELDS and isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif name == "type" and isinstance(value, str):
            value = ItemType(value)
        elif name == "status" and isinstance(value, str):
            value = ItemStatus(value)
        elif name == "hashtags" and isinstance(value, list):
            value = tuple(str(v) for v in value)
        fields[name] = value
    return Item(**fields)  # type: ignore[arg-type]
