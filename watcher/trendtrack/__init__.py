"""The TrendTrack Public API client (httpx lives here and nowhere else in watcher)."""

from __future__ import annotations

from watcher.trendtrack.client import Page, TrendTrackClient, rejects_parameter
from watcher.trendtrack.meter import CreditMeter, UsageRecord
from watcher.trendtrack.models import ApiItem, Freshness, Pagination, Usage, parse_items, to_item
from watcher.trendtrack.params import (
    KeywordMode,
    ListParams,
    Order,
    Pinned,
    QueryBody,
    SearchArea,
    SortBy,
    StatusFilter,
    TypeFilter,
)

__all__ = [
    "ApiItem",
    "CreditMeter",
    "Freshness",
    "KeywordMode",
    "ListParams",
    "Order",
    "Page",
    "Pagination",
    "Pinned",
    "QueryBody",
    "SearchArea",
    "SortBy",
    "StatusFilter",
    "TrendTrackClient",
    "TypeFilter",
    "Usage",
    "UsageRecord",
    "parse_items",
    "rejects_parameter",
    "to_item",
]
