"""Response models: tolerant of gaps and new fields, one bad item never sinks a page."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.trendtrack.fakes import item_json
from watcher.models import ItemStatus, ItemType
from watcher.trendtrack import ApiItem, parse_items, to_item
from watcher.trendtrack.models import ApiFreshness, Usage, parse_pagination


def test_full_item_parses_every_documented_field() -> None:
    """Every field of the spec's item lands in the model."""
    api = ApiItem.model_validate(
        item_json(
            links={"tiktokUrl": "https://t.test/v", "profileUrl": "https://t.test/p"},
            source={
                "network": "tiktok",
                "sourceType": "ads",
                "tiktokPageId": 42,
                "websiteId": "w1",
                "domain": "gym.test",
            },
        )
    )
    assert api.media is not None
    assert api.media.medias
    assert api.media.medias[0]
    assert api.media.medias[0].url == "https://cdn.test/v.mp4"
    assert api.content
    assert api.content.music
    assert api.content.music.author == "gymbrand"
    assert api.metrics
    assert api.metrics.delta_rank30d == 40
    assert api.metrics.rank_percent == 1.2
    assert api.profile
    assert api.profile.total_tik_toks == 140
    assert api.profile.sec_uid == "MS4w"
    assert api.shop
    assert api.shop.traffic_growth30d == 12.5
    assert api.shop.google_category_ids == ["412"]
    assert api.pin
    assert api.pin.last_unpinned_at == datetime(2026, 4, 10, tzinfo=UTC)
    assert api.page_snapshot
    assert api.page_snapshot.daily_followers == 15
    assert api.links
    assert api.links.profile_url == "https://t.test/p"
    assert api.source
    assert api.source.tiktok_page_id == "42"
    assert api.indexed_at == datetime(2026, 4, 20, 18, tzinfo=UTC)


def test_to_item_maps_the_domain_fields() -> None:
    """The converter fills the domain Item and keeps the handle as served."""
    item = to_item(ApiItem.model_validate(item_json(isPinned=True)))
    assert item.id == "tiktok_7078586231734521001"
    assert item.tiktok_id == "7078586231734521001"
    assert item.type is ItemType.AD
    assert item.status is ItemStatus.ACTIVE
    assert item.pinned is True
    assert item.rank == 12
    assert item.views == 120000
    assert item.engagement_rate == 4.3
    assert item.handle == "@gymbrand"
    assert item.link == "https://www.tiktok.com/@gymbrand/video/7078586231734521001"
    assert item.hashtags == ("protein", "gummies")
    assert item.music_title == "Original sound"
    assert item.shop_domain == "gym.test"
    assert item.shop_name == "Gym Shop"
    assert item.last_pinned_at == datetime(2026, 4, 2, tzinfo=UTC)
    assert item.thumbnail_url == "https://cdn.test/t.jpg"


NULL_EVERYWHERE: dict[str, Any] = {
    "id": "tiktok_55",
    "tiktokId": None,
    "type": None,
    "status": None,
    "isPinned": None,
    "publishedAt": None,
    "media": None,
    "content": {"description": None, "hashtags": [None, "ok"], "music": None},
    "metrics": {"views": None, "rank": None},
    "profile": None,
    "shop": None,
    "pin": {"isCurrent": True, "lastPinnedAt": None},
    "pageSnapshot": None,
    "indexedAt": None,
}


def test_nulls_everywhere_still_make_an_item() -> None:
    """Null nested objects and fields become None; the id digits give the tiktok id."""
    item = to_item(ApiItem.model_validate(NULL_EVERYWHERE))
    assert item.id == "tiktok_55"
    assert item.tiktok_id == "55"
    assert item.type is None
    assert item.views is None
    assert item.handle is None
    assert item.pinned is True  # from pin.isCurrent when isPinned is null
    assert item.hashtags == ("ok",)
    assert item.link == "https://www.tiktok.com/@/video/55"


def test_only_an_id_is_required() -> None:
    """A bare ``{"id": ...}`` is a valid item."""
    item = to_item(ApiItem.model_validate({"id": "abc"}))
    assert item.id == "abc"
    assert item.tiktok_id is None
    assert item.link is None


def test_unknown_fields_and_enum_values_are_tolerated() -> None:
    """New fields are ignored and a new type/status value maps to None, not an error."""
    raw = item_json(
        type="spark_ad",
        status="paused",
        brandNewField={"x": 1},
        metrics={"views": 3, "newMetric": 9},
    )
    item = to_item(ApiItem.model_validate(raw))
    assert item.type is None
    assert item.status is None
    assert item.views == 3


def test_numeric_ids_and_naive_times_are_normalised() -> None:
    """A numeric tiktokId becomes a string and a naive timestamp is read as UTC."""
    api = ApiItem.model_validate(
        {"id": "tiktok_1", "tiktokId": 1, "publishedAt": "2026-04-20T10:00:00"}
    )
    assert api.tiktok_id == "1"
    assert api.published_at == datetime(2026, 4, 20, 10, tzinfo=UTC)


def test_malformed_items_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Entries without a valid id are dropped and logged; one with a bad optional field is
    kept without that field (logged too); good ones are kept in order."""
    raw: list[object] = [
        item_json(1),
        {"id": None},
        item_json(2, metrics={"views": "lots"}),
        "not an object",
        item_json(3),
    ]
    with caplog.at_level(logging.WARNING, logger="watcher.trendtrack"):
        parsed = parse_items(raw, request_id="req_9")
    ids = [item_json(1)["id"], item_json(2)["id"], item_json(3)["id"]]
    assert [i.id for i in parsed.items] == ids
    assert parsed.items[1].metrics is not None
    assert parsed.items[1].metrics.views is None
    assert parsed.skipped == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "metrics.views" in warnings[1].getMessage()
    assert "req_9" in warnings[0].getMessage()


def test_malformed_pagination_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """A broken pagination object yields unknown totals, not an error."""
    with caplog.at_level(logging.WARNING, logger="watcher.trendtrack"):
        pagination = parse_pagination({"total": "many", "page": 1})
    assert pagination.total is None
    assert pagination.page is None
    assert "pagination" in caplog.text


def test_usage_and_freshness_models() -> None:
    """The free routes' bodies parse into typed values."""
    usage = Usage.model_validate(
        {
            "balance": 9000,
            "recurring": {"limit": 10000, "used": 1000, "remaining": 9000},
            "topup": {"balance": 0},
            "totalRemaining": 9000,
        }
    )
    assert usage.recurring
    assert usage.recurring.used == 1000
    assert usage.total_remaining == 9000
    fresh = ApiFreshness.model_validate(
        {"latestReadyDate": "2026-04-23", "dataFreshnessLagDays": 1, "generatedAt": None}
    )
    assert fresh.latest_ready_date is not None
    assert fresh.latest_ready_date.day == 23
