"""How the simulated library orders items: the sort keys of ``sortBy``, ties by id."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from watcher.simulator.entities import SimItem

SortKey = Callable[[SimItem], float]
SORT_KEYS: dict[str, SortKey] = {
    "newest": lambda i: i.published_at.timestamp(),
    "updatedAt": lambda i: i.updated_at.timestamp(),
    "views": lambda i: i.views,
    "likes": lambda i: i.likes,
    "comments": lambda i: i.comments,
    "shares": lambda i: i.shares,
    "saves": lambda i: i.saves,
    "engagementRate": lambda i: i.engagement_rate,
    "daysRunning": lambda i: i.days_running,
    "followers": lambda i: i.profile.followers,
}


def sort_items(items: Iterable[SimItem], sort_by: str, descending: bool) -> list[SimItem]:
    """Sort by ``sort_by`` (``relevance`` means newest here); ties always by id descending."""
    key = SORT_KEYS.get(sort_by, SORT_KEYS["newest"])
    if descending:
        return sorted(items, key=lambda i: (key(i), i.tiktok_id), reverse=True)
    return sorted(items, key=lambda i: (key(i), -i.tiktok_id))
