"""Seeded generation of the world's shops, profiles, sounds and items (pure).

Everything comes from one ``random.Random``: the same seed always yields the same world.
The ``Generator`` stays with the world afterwards to make the items that appear later.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random

from watcher.simulator import vocab
from watcher.simulator.clock import DAY, midnight_on_or_before
from watcher.simulator.entities import Music, Profile, Shop, SimItem
from watcher.simulator.params import WorldParams

HOUR = timedelta(hours=1)


@dataclass(slots=True)
class Genesis:
    """The initial world, before any growth or ranking."""

    shops: list[Shop]
    profiles: list[Profile]
    items: list[SimItem]


class Generator:
    """Makes world records from a seeded RNG; ids and names are unique per world."""

    def __init__(self, rng: Random, params: WorldParams) -> None:
        self._rng = rng
        self._params = params
        self._ids: set[int] = set()
        self._names: set[str] = set()
        self.music = [self._track(n) for n in range(40)]

    @contextmanager
    def drawing_from(self, rng: Random) -> Iterator[None]:
        """Draw from ``rng`` instead for the ``with`` block (ids and names stay unique)."""
        saved, self._rng = self._rng, rng
        try:
            yield
        finally:
            self._rng = saved

    def _digits(self, count: int) -> str:
        return str(self._rng.randrange(10 ** (count - 1), 10**count))

    def _track(self, n: int) -> Music:
        title = vocab.MUSIC_TITLES[n % len(vocab.MUSIC_TITLES)]
        author = self._rng.choice(vocab.MUSIC_AUTHORS)
        return Music(self._digits(19), title, author)

    def _unique(self, candidates: list[str]) -> str:
        for name in candidates:
            if name.lower() not in self._names:
                self._names.add(name.lower())
                return name
        name = f"{candidates[0]}{len(self._names)}"
        self._names.add(name.lower())
        return name

    def shop(self, niche: int) -> Shop:
        """A merchant in ``niche`` with a unique brand name and domain."""
        rng = self._rng
        spec = vocab.NICHES[niche]
        names = [rng.choice(spec.brand_roots) + rng.choice(vocab.BRAND_SUFFIXES) for _ in range(12)]
        name = self._unique(names)
        return Shop(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            domain=f"{name.lower()}.{rng.choice(vocab.TLDS)}",
            name=name,
            niche=niche,
            country_code=rng.choice(vocab.COUNTRIES),
            monthly_visits=int(rng.lognormvariate(10.5, 1.3)),
            traffic_growth_30d=round(rng.gauss(4.0, 18.0), 1),
            products_count=int(rng.lognormvariate(3.5, 1.0)) + 1,
            google_category_ids=spec.google_category_ids,
        )

    def profile(
        self, niche: int, shop: Shop | None, now: datetime, *, handle: str | None = None
    ) -> Profile:
        """A brand account of ``shop``, or a creator account when ``shop`` is None.

        ``handle``, for a brand account, names it instead of one drawn from the shop's name.
        """
        rng = self._rng
        spec = vocab.NICHES[niche]
        if shop:
            root = shop.name.lower()
            if handle is None:
                handle = self._unique(
                    [root, f"{root}.{rng.choice(vocab.HANDLE_SUFFIXES)}"]
                    + [f"{root}_{s}" for s in vocab.HANDLE_SUFFIXES]
                )
            else:
                handle = self._unique([handle])
                root = handle.split(".")[0]
            name = shop.name if handle == root else f"{shop.name} {handle.split('.')[-1]}"
            bio = f"{rng.choice(spec.products).title()} & more ✨ Shop below 👇"
            followers = int(rng.lognormvariate(10.0, 1.4))
        else:
            first = rng.choice(vocab.FIRST_NAMES)
            handle = self._unique(
                [
                    f"{first.lower()}.{rng.choice(spec.hashtags)}{rng.randrange(10, 99)}"
                    for _ in range(8)
                ]
            )
            name = f"{first} | {spec.name} finds"
            bio = f"{spec.category} lover 💕 honest reviews"
            followers = int(rng.lognormvariate(9.0, 1.6))
        return Profile(
            id=self._digits(19),
            handle=handle,
            name=name,
            bio=bio,
            sec_uid="MS4wLjABAAAA"
            + "".join(
                rng.choices(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", k=52
                )
            ),
            niche=niche,
            language=rng.choice(vocab.LANGUAGES),
            followers=followers,
            following=int(rng.lognormvariate(4.5, 1.0)),
            page_created=now - timedelta(days=rng.randrange(200, 2500)),
            shop=shop,
            unindexed_tiktoks=rng.randrange(0, 300),
        )

    def item(
        self,
        profile: Profile,
        published_at: datetime,
        indexed_at: datetime,
        *,
        kind: str | None = None,
        shop: Shop | None = None,
        caption: str | None = None,
        hashtags: list[str] | None = None,
    ) -> SimItem:
        """A new item of ``profile``; anything not given is drawn from the niche."""
        rng = self._rng
        spec = vocab.NICHES[profile.niche]
        resolution = self._params.publish_resolution
        if resolution > 0:
            stamp = int(published_at.timestamp())
            published_at = datetime.fromtimestamp(stamp - stamp % resolution, UTC)
        if kind is None:
            kind = "ad" if profile.shop and rng.random() < self._params.ad_share else "organic"
        product = rng.choice(spec.products)
        if hashtags is None:
            hashtags = rng.sample(spec.hashtags, 2) + rng.sample(vocab.GENERIC_HASHTAGS, 2)
            if rng.random() < 0.5:
                hashtags.append(product.replace(" ", ""))
        tags = tuple(tag.lstrip("#") for tag in hashtags)
        if caption is None:
            text = rng.choice(vocab.CAPTION_TEMPLATES).format(product=product)
            caption = f"{text} " + " ".join(f"#{tag}" for tag in tags)
        return SimItem(
            tiktok_id=self._tiktok_id(published_at),
            type=kind,
            status="active",
            profile=profile,
            shop=shop if shop is not None else profile.shop,
            published_at=published_at,
            indexed_at=indexed_at,
            created_at=indexed_at,
            updated_at=indexed_at,
            caption=caption,
            hashtags=tags,
            language=profile.language if rng.random() > 0.08 else None,
            category=spec.category,
            music=self._music_for(profile, kind),
            media_kind="image" if rng.random() < 0.1 else "video",
            duration_sec=rng.randrange(7, 91),
            image_count=rng.randrange(2, 9),
            base_views=rng.lognormvariate(6.7, 1.6) * (2.5 if kind == "ad" else 1.0),
            like_rate=min(0.25, max(0.003, rng.lognormvariate(-3.1, 0.5))),
            relevance_score=round(rng.random(), 4),
            grown_until=midnight_on_or_before(published_at),
        )

    def _tiktok_id(self, published_at: datetime) -> int:
        """TikTok-style snowflake: publish second in the top bits, so ids sort by time."""
        while True:
            candidate = (int(published_at.timestamp()) << 32) | self._rng.getrandbits(32)
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def _music_for(self, profile: Profile, kind: str) -> Music | None:
        roll = self._rng.random()
        if roll < 0.12:
            return None
        if kind == "ad" and roll < 0.35:
            return Music(self._digits(19), f"original sound - {profile.handle}", profile.name)
        return self._rng.choice(self.music)

    def index_lag(self) -> timedelta:
        """How long after publishing a new item is indexed: hours, or days for some."""
        if self._rng.random() < self._params.lagged_share:
            return timedelta(days=self._rng.uniform(1.0, 5.0))
        return timedelta(hours=self._rng.uniform(0.5, 20.0))

    def genesis(self, first_refresh: datetime) -> Genesis:
        """Shops, their profiles, creators and the items indexed by ``first_refresh``."""
        rng = self._rng
        params = self._params
        niches = len(vocab.NICHES)
        shops = [self.shop(n % niches) for n in range(params.shops)]
        profiles = [
            self.profile(shop.niche, shop, first_refresh)
            for shop in shops
            for _ in range(params.profiles_per_shop)
        ]
        profiles += [
            self.profile(rng.randrange(niches), None, first_refresh) for _ in range(params.creators)
        ]
        weights = [rng.lognormvariate(0.0, 0.7) for _ in profiles]
        items = [
            self.past_item(p, first_refresh) for p in rng.choices(profiles, weights, k=params.items)
        ]
        for profile in profiles:
            self.initial_pins(profile, first_refresh)
        items.sort(key=lambda item: item.tiktok_id)
        return Genesis(shops, profiles, items)

    def past_item(self, profile: Profile, first_refresh: datetime) -> SimItem:
        """An item of ``profile`` published within ``history_days`` and indexed by now."""
        rng = self._rng
        while True:
            published = first_refresh - timedelta(
                seconds=rng.uniform(3600.0, self._params.history_days * 86400.0)
            )
            indexed = midnight_on_or_before(published + self.index_lag()) + DAY
            if indexed <= first_refresh:
                break
        item = self.item(profile, published, indexed)
        self._history(item, first_refresh)
        profile.items.append(item)
        return item

    def _history(self, item: SimItem, first_refresh: datetime) -> None:
        """Status and days running as of ``first_refresh``; a stop moves ``updatedAt``."""
        rng = self._rng
        lived = max(0, (first_refresh - item.published_at).days)
        item.days_running = lived
        if item.type == "ad" and rng.random() < 0.35 + 0.4 * min(1.0, lived / 60):
            item.status = "inactive"
            days_indexed = max(0, (first_refresh - item.indexed_at).days)
            stopped = item.indexed_at + DAY * rng.randint(0, days_indexed)
            item.updated_at = max(item.updated_at, stopped)
            item.days_running = max(0, (stopped - item.published_at).days)

    def initial_pins(self, profile: Profile, first_refresh: datetime, *, at_least: int = 0) -> None:
        """Up to ``max_pins`` pinned items per profile, and some pinned in the past."""
        rng = self._rng
        recent = sorted(profile.items, key=lambda item: item.published_at)[-12:]
        most = min(self._params.max_pins, len(recent))
        pins = rng.randint(min(at_least, most), most)
        for item in rng.sample(recent, pins):
            days = max(0, (first_refresh - item.indexed_at).days)
            pinned = item.indexed_at + DAY * rng.randint(0, days)
            item.is_pinned = True
            item.first_pinned_at = item.last_pinned_at = pinned
            item.updated_at = max(item.updated_at, pinned)
        for item in recent:
            if not item.is_pinned and rng.random() < 0.08:
                days = max(0, (first_refresh - item.indexed_at).days)
                unpinned = item.indexed_at + DAY * rng.randint(0, days)
                item.first_pinned_at = item.last_pinned_at = max(item.indexed_at, unpinned - DAY)
                item.last_unpinned_at = unpinned
                item.updated_at = max(item.updated_at, unpinned)
