"""How items gain views day by day, and how they rank by it (pure, seeded).

An item's daily views follow its heavy-tailed base popularity, decay with age (ads
slower, and barely while stopped) and carry daily noise, so ranks move every day
without anything jumping for no reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from random import Random

from watcher.simulator.clock import DAY
from watcher.simulator.entities import RANK_WINDOW, Profile, SimItem

AD_HALF_LIFE_DAYS = 12.0
ORGANIC_HALF_LIFE_DAYS = 3.0
LONG_TAIL = 0.03
STOPPED_AD_FACTOR = 0.15
DAILY_NOISE_SIGMA = 0.35
SECONDS_PER_DAY = 86400.0


def grow(
    item: SimItem,
    until: datetime,
    rng: Random,
    *,
    detailed_days: int = RANK_WINDOW,
    record: list[int] | None = None,
) -> int:
    """Accrue the item's views day by day up to ``until`` (a midnight); returns views added.

    Each simulated day appends one entry to ``item.gains``; the first day counts only the
    part after publishing, so a lagged item arrives with the views it gathered meanwhile.
    Only the last ``detailed_days`` days (and the first) are drawn one by one; ``record``,
    when given, receives those daily gains in order.
    """
    days = round((until - item.grown_until).total_seconds() / SECONDS_PER_DAY)
    if days <= 0:
        return 0
    half_life = AD_HALF_LIFE_DAYS if item.type == "ad" else ORGANIC_HALF_LIFE_DAYS
    factor = STOPPED_AD_FACTOR if item.type == "ad" and item.status != "active" else 1.0
    # day offsets relative to publishing: the first day may start before it
    start = (item.grown_until - item.published_at).total_seconds() / SECONDS_PER_DAY
    added = 0
    bulk_from, bulk_to = 1, days - detailed_days
    for n in range(days):
        if bulk_from <= n < bulk_to:
            if n == bulk_from:
                bulk = _bulk_views(item, start + n, bulk_to - n, half_life, factor)
                item.views += bulk
                added += bulk
            continue
        day_start = start + n
        live_from = max(day_start, 0.0)
        fraction = min(1.0, day_start + 1.0 - live_from)
        gain = 0
        if fraction > 0.0:
            level = (0.5 ** (live_from / half_life) + LONG_TAIL) * factor
            noise = math.exp(rng.gauss(0.0, DAILY_NOISE_SIGMA))
            gain = int(item.base_views * level * fraction * noise)
        item.add_views(gain)
        added += gain
        if record is not None:
            record.append(gain)
    item.grown_until += DAY * days
    return added


def _bulk_views(item: SimItem, age: float, days: int, half_life: float, factor: float) -> int:
    """Expected views over ``days`` whole days from ``age``: long-past days need no noise.

    They fall out of the seven-day window before any rank is taken, so only their sum
    matters; a geometric series gives it without a loop.
    """
    if age <= 0.0:
        return 0
    ratio = 0.5 ** (1.0 / half_life)
    decayed = ratio**age * (1.0 - ratio**days) / (1.0 - ratio)
    mean_noise = math.exp(DAILY_NOISE_SIGMA**2 / 2)
    return int(item.base_views * (decayed + LONG_TAIL * days) * factor * mean_noise)


def rank_order(items: Iterable[SimItem]) -> list[SimItem]:
    """Items best first by views gained over the last seven days; ties by id, descending."""
    return sorted(items, key=lambda item: (item.gain7, item.tiktok_id), reverse=True)


def assign_ranks(order: list[SimItem]) -> dict[int, int]:
    """Set ``item.rank`` from position (1 = best); returns tiktokId -> rank."""
    ranks: dict[int, int] = {}
    for position, item in enumerate(order, start=1):
        item.rank = position
        ranks[item.tiktok_id] = position
    return ranks


FOLLOWS_PER_VIEW = 0.002


def fit_gains(item: SimItem, order: list[SimItem], position: int) -> None:
    """Make a forced rank consistent with views gained: land between the neighbours."""
    above = order[position - 1].gain7 if position > 0 else None
    below = order[position + 1].gain7 if position + 1 < len(order) else 0
    target = (above + below) // 2 if above is not None else max(below * 2, 1000)
    current = item.gain7
    if target > current:
        item.gains[-1] += target - current
        item.views += target - current
    elif current > 0:
        scale = target / current
        for n, gain in enumerate(item.gains):
            item.gains[n] = int(gain * scale)
    item.gain7 = sum(item.gains)


def update_profiles(profiles: Iterable[Profile], at: datetime, gains: Mapping[int, int]) -> None:
    """Each profile's counts and daily gains from its indexed items, after a refresh."""
    week_ago = at - timedelta(days=7)
    for profile in profiles:
        visible = [item for item in profile.items if item.in_index]
        profile.ads_count = sum(1 for item in visible if item.type == "ad")
        profile.organic_count = len(visible) - profile.ads_count
        profile.total_tiktoks = len(visible) + profile.unindexed_tiktoks
        profile.new_tiktoks = sum(1 for item in visible if item.published_at > week_ago)
        profile.views = sum(item.views for item in visible)
        profile.likes = sum(item.likes for item in visible)
        profile.daily_views = sum(gains.get(item.tiktok_id, 0) for item in visible)
        profile.daily_likes = sum(
            int(gains.get(item.tiktok_id, 0) * item.like_rate) for item in visible
        )
        profile.daily_followers = int(profile.daily_views * FOLLOWS_PER_VIEW)
        profile.followers += profile.daily_followers
        profile.recorded_at = at
