"""Realistic sample events, for ``watcher render``, template validation and tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from watcher.models import Event, EventKind, Item, ItemStatus, ItemType

_SAMPLE_AT = datetime(2025, 3, 12, 14, 5, tzinfo=UTC)
_SAMPLE_FIGURES: dict[str, dict[str, object]] = {
    "new_ad": {"views": 1_234_567},
    "new_video": {"views": 48_210},
    "rank_jump": {"rank_before": 48, "rank_after": 7, "views": 2_310_000},
    "ad_stopped": {"days_running": 23},
    "ad_resumed": {"days_running": 30},
    "ad_milestone": {"milestone": 14, "days_running": 14, "views": 1_234_567},
    "silence_ended": {
        "silence": 3,
        "matchers": "watch=acme-shop kind=ad_stopped",
        "reason": "spring sale: stops expected",
        "held": [["acme-shop", "ad_stopped", 4], ["acme-shop", "new_ad", 1]],
        "total": 5,
    },
    "baseline": {"items": 137, "active_ads": 41, "pinned": 3},
    "watch_failing": {"failures": 3, "error": "TrendTrack API unavailable (HTTP 503)"},
    "watch_recovered": {"failures": 3},
    "credits_low": {"balance": 812, "threshold": 1000},
    "credits_exhausted": {"balance": 0},
    "budget_exceeded": {"forecast": 12_400, "budget": 10_000},
    "auth_rejected": {"error": "API key revoked (HTTP 401)"},
    "config_rejected": {"error": "watches.yaml:14: unknown event kind 'new_adz'"},
    "delivery_failed": {
        "notifier": "marketing",
        "index": 0,
        "attempts": 5,
        "error": "HTTP 500",
    },
}


def sample_item(n: int = 0) -> Item:
    """A realistic ad; ``n`` varies its ids and figures."""
    return Item(
        id=f"itm_{n:04d}",
        tiktok_id=str(7078586231734521093 + n),
        type=ItemType.AD,
        status=ItemStatus.ACTIVE,
        pinned=False,
        published_at=_SAMPLE_AT - timedelta(days=14),
        indexed_at=_SAMPLE_AT - timedelta(hours=6),
        rank=7,
        views=1_234_567 + 1_000 * n,
        likes=45_321,
        comments=812,
        shares=1_204,
        days_running=14,
        handle="rivalbrand",
        profile_name="Rival Brand",
        followers=389_000,
        caption="Our creatine gummies just dropped 🍬💪 30 servings, zero sugar. #creatine #gym",
        hashtags=("creatine", "gym"),
        shop_id="3f8aa146-6f96-46e8-9781-64db5166f9a8",
        shop_domain="rivalbrand.com",
        shop_name="Rival Brand Store",
    )


def sample_event(kind: EventKind | str, *, item: Item | None = None, n: int = 0) -> Event:
    """A realistic event of ``kind`` for watch ``acme-shop``."""
    kind = EventKind(kind)
    figures = dict(_SAMPLE_FIGURES.get(str(kind), {}))
    if kind.is_ops or kind in {EventKind.BASELINE, EventKind.SILENCE_ENDED}:
        subject = None
    else:
        subject = item or sample_item(n)
        if kind == EventKind.NEW_VIDEO:
            subject = replace(subject, type=ItemType.ORGANIC, days_running=None)
        elif kind == EventKind.AD_STOPPED:
            subject = replace(subject, status=ItemStatus.INACTIVE, days_running=23)
        elif kind == EventKind.PINNED:
            subject = replace(subject, pinned=True)
        elif kind == EventKind.RANK_JUMP:
            subject = replace(subject, rank=7)
    watch = "ops" if kind.is_ops else "watcher" if kind == EventKind.SILENCE_ENDED else "acme-shop"
    tiktok_id = subject.tiktok_id if subject else "-"
    return Event(f"{watch}:{kind}:{tiktok_id}", kind, watch, _SAMPLE_AT, subject, figures)
