"""The TrendTrack Public API: its request and response vocabulary (this package), and the
client (``watcher.trendtrack.client``, where httpx lives and nowhere else in watcher).

The package itself exports only pure values, so the planner can build requests without
loading the HTTP stack; import the client from its module.
"""

from __future__ import annotations

from watcher.models import KeywordMode, Order, Pinned, SearchArea, SortBy, StatusFilter, TypeFilter
from watcher.trendtrack.models import (
    ApiFreshness,
    ApiItem,
    Page,
    Pagination,
    Usage,
    parse_items,
    to_item,
)
from watcher.trendtrack.params import ListParams, QueryBody

__all__ = [
    "ApiFreshness",
    "ApiItem",
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
    "TypeFilter",
    "Usage",
    "parse_items",
    "to_item",
]
