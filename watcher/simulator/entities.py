"""The records of the simulated world (shops, profiles, items) and their JSON form.

Records are mutable on purpose: the world evolves them in place at each refresh, and
request handlers only read them (through the world's per-refresh JSON cache).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from watcher.simulator.clock import iso

Json = dict[str, object]
MEDIA_HOST = "https://media.sim.trendtrack.invalid"
RANK_WINDOW = 7


@dataclass(slots=True)
class Shop:
    """A merchant whose products the ads promote (served as ``item.shop``)."""

    id: str
    domain: str
    name: str
    niche: int
    country_code: str
    monthly_visits: int
    traffic_growth_30d: float
    products_count: int
    google_category_ids: tuple[int, ...]

    def to_json(self) -> Json:
        """The ``shop`` object of an item."""
        return {
            "id": self.id,
            "domain": self.domain,
            "name": self.name,
            "logoUrl": f"https://{self.domain}/logo.png",
            "faviconUrl": f"https://{self.domain}/favicon.ico",
            "countryCode": self.country_code,
            "monthlyVisits": self.monthly_visits,
            "trafficGrowth30d": self.traffic_growth_30d,
            "productsCount": self.products_count,
            "googleCategoryIds": list(self.google_category_ids),
        }


@dataclass(slots=True)
class Profile:
    """A TikTok account; aggregates below are recomputed at every refresh."""

    id: str
    handle: str
    name: str
    bio: str
    sec_uid: str
    niche: int
    language: str | None
    followers: int
    following: int
    page_created: datetime
    shop: Shop | None
    unindexed_tiktoks: int
    items: list[SimItem] = field(default_factory=list)
    total_tiktoks: int = 0
    new_tiktoks: int = 0
    ads_count: int = 0
    organic_count: int = 0
    views: int = 0
    likes: int = 0
    daily_views: int = 0
    daily_likes: int = 0
    daily_followers: int = 0
    recorded_at: datetime | None = None

    def to_json(self) -> Json:
        """The ``profile`` object of an item."""
        total = self.total_tiktoks
        return {
            "id": self.id,
            "handle": self.handle,
            "name": self.name,
            "avatarUrl": f"{MEDIA_HOST}/avatars/{self.id}.jpg",
            "bio": self.bio,
            "bioUrl": f"https://{self.shop.domain}" if self.shop else None,
            "accountType": "business" if self.shop else "creator",
            "secUid": self.sec_uid,
            "followers": self.followers,
            "following": self.following,
            "totalTikToks": total,
            "newTikToks": self.new_tiktoks,
            "percentAds": round(100 * self.ads_count / total, 1) if total else 0.0,
            "views": self.views,
            "likes": self.likes,
            "pageCreation": self.page_created.date().isoformat(),
        }

    def snapshot_json(self) -> Json:
        """The ``pageSnapshot`` object: the profile as recorded at the last refresh."""
        return {
            "recordedAt": iso(self.recorded_at) if self.recorded_at else None,
            "adsCount": self.ads_count,
            "organicCount": self.organic_count,
            "totalTikToks": self.total_tiktoks,
            "dailyViews": self.daily_views,
            "dailyLikes": self.daily_likes,
            "dailyFollowers": self.daily_followers,
        }


@dataclass(frozen=True, slots=True)
class Music:
    """A sound used by videos."""

    id: str
    title: str
    author: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """An item's searchable text, lower-cased once (it never changes after creation)."""

    caption: str
    handle: str
    name: str
    hashtags: frozenset[str]
    music: str
    everything: str
    """Caption, handle, name and music in one string, for the ``all`` area."""


@dataclass(slots=True)
class SimItem:
    """One ad or organic video, with its full history-relevant state."""

    tiktok_id: int
    type: str
    status: str
    profile: Profile
    shop: Shop | None
    published_at: datetime
    indexed_at: datetime
    created_at: datetime
    updated_at: datetime
    caption: str
    hashtags: tuple[str, ...]
    language: str | None
    category: str
    music: Music | None
    media_kind: str
    duration_sec: int | None
    image_count: int
    base_views: float
    like_rate: float
    relevance_score: float
    grown_until: datetime
    in_index: bool = False
    days_running: int = 0
    views: int = 0
    gains: deque[int] = field(default_factory=lambda: deque(maxlen=RANK_WINDOW))
    is_pinned: bool = False
    first_pinned_at: datetime | None = None
    last_pinned_at: datetime | None = None
    last_unpinned_at: datetime | None = None
    gain7: int = 0
    """Views gained over the last seven days (the sum of ``gains``): what ranks order by."""
    rank: int | None = None
    search: SearchText | None = None

    @property
    def id(self) -> str:
        """The composite id ``tiktok_<digits>``."""
        return f"tiktok_{self.tiktok_id}"

    @property
    def likes(self) -> int:
        return int(self.views * self.like_rate)

    @property
    def comments(self) -> int:
        return int(self.likes * 0.021)

    @property
    def shares(self) -> int:
        return int(self.views * self.like_rate * 0.06)

    @property
    def saves(self) -> int:
        return int(self.views * self.like_rate * 0.09)

    @property
    def reposts(self) -> int:
        return int(self.views * 0.0004)

    @property
    def engagement_rate(self) -> float:
        """(likes + comments + shares + saves) / views, in percent."""
        if not self.views:
            return 0.0
        engaged = self.likes + self.comments + self.shares + self.saves
        return round(100 * engaged / self.views, 2)

    def search_text(self) -> SearchText:
        """The lower-cased text search matches against, computed on first use."""
        if self.search is None:
            music = f"{self.music.title} {self.music.author}" if self.music else ""
            parts = (self.caption, self.profile.handle, self.profile.name, music)
            self.search = SearchText(
                caption=parts[0].lower(),
                handle=parts[1].lower(),
                name=parts[2].lower(),
                hashtags=frozenset(tag.lower() for tag in self.hashtags),
                music=music.lower(),
                everything="\n".join(parts).lower(),
            )
        return self.search

    def add_views(self, gain: int) -> None:
        """Record one day's views; every engagement count follows from the total."""
        if len(self.gains) == self.gains.maxlen:
            self.gain7 -= self.gains[0]
        self.gains.append(gain)
        self.gain7 += gain
        self.views += gain


def media_json(item: SimItem) -> Json:
    """The ``media`` object: a video, or an image carousel with its sound."""
    base = f"{MEDIA_HOST}/tiktok/{item.tiktok_id}"
    if item.media_kind == "video":
        video = f"{base}/video.mp4"
        return {
            "type": "video",
            "thumbnailUrl": f"{base}/cover.jpg",
            "mediaUrl": video,
            "videoUrl": video,
            "imageUrls": [],
            "medias": [{"type": "video", "url": video, "order": 0}],
            "durationSec": item.duration_sec,
            "mediaCount": 1,
            "imageCount": 0,
        }
    images = [f"{base}/image_{n}.jpg" for n in range(item.image_count)]
    return {
        "type": "image",
        "thumbnailUrl": images[0],
        "mediaUrl": images[0],
        "videoUrl": None,
        "imageUrls": images,
        "medias": [{"type": "image", "url": url, "order": n} for n, url in enumerate(images)],
        "durationSec": None,
        "mediaCount": len(images),
        "imageCount": len(images),
    }


def item_json(item: SimItem, deltas: dict[int, int | None], ranked: int) -> Json:
    """The list-route item; ``deltas`` maps 3/7/14/30 days to the rank change."""
    music = item.music
    rank = item.rank
    return {
        "id": item.id,
        "tiktokId": str(item.tiktok_id),
        "type": item.type,
        "status": item.status,
        "isPinned": item.is_pinned,
        "publishedAt": iso(item.published_at),
        "createdAt": iso(item.created_at),
        "updatedAt": iso(item.updated_at),
        "daysRunning": item.days_running,
        "media": media_json(item),
        "content": {
            "description": item.caption,
            "language": item.language,
            "category": item.category,
            "hashtags": list(item.hashtags),
            "music": {"id": music.id, "title": music.title, "author": music.author}
            if music
            else None,
        },
        "metrics": {
            "views": item.views,
            "likes": item.likes,
            "comments": item.comments,
            "saves": item.saves,
            "shares": item.shares,
            "reposts": item.reposts,
            "engagementRate": item.engagement_rate,
            "rank": rank,
            "rankPercent": round(100 * rank / ranked, 2) if rank and ranked else None,
            "relevanceScore": item.relevance_score,
            "deltaRank3d": deltas.get(3),
            "deltaRank7d": deltas.get(7),
            "deltaRank14d": deltas.get(14),
            "deltaRank30d": deltas.get(30),
        },
        "profile": item.profile.to_json(),
        "shop": item.shop.to_json() if item.shop else None,
        "pin": {
            "isCurrent": item.is_pinned,
            "firstPinnedAt": iso(item.first_pinned_at) if item.first_pinned_at else None,
            "lastPinnedAt": iso(item.last_pinned_at) if item.last_pinned_at else None,
            "lastUnpinnedAt": iso(item.last_unpinned_at) if item.last_unpinned_at else None,
        },
        "pageSnapshot": item.profile.snapshot_json(),
        "indexedAt": iso(item.indexed_at),
    }


def detail_extras(item: SimItem) -> Json:
    """What the detail route adds to an item: ``links`` and ``source``."""
    handle = item.profile.handle
    return {
        "links": {
            "tiktokUrl": f"https://www.tiktok.com/@{handle}/video/{item.tiktok_id}",
            "profileUrl": f"https://www.tiktok.com/@{handle}",
        },
        "source": {
            "network": "tiktok",
            "sourceType": item.type,
            "tiktokPageId": item.profile.id,
            "websiteId": item.shop.id if item.shop else None,
            "domain": item.shop.domain if item.shop else None,
        },
    }
