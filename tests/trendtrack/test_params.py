"""Request parameters: validation before sending, and their wire form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from watcher.errors import ParameterError
from watcher.trendtrack import ListParams, Pinned, QueryBody, SearchArea, SortBy
from watcher.trendtrack.params import TYPED_BODY_KEYS


def test_list_params_serialize_camel_case_with_repeated_search() -> None:
    """GET parameters are camelCase, one ``search`` pair per keyword, None omitted."""
    params = ListParams(
        search=("protein gummies", "creatine"),
        keyword_mode="all",
        search_area="caption",
        type="ad",
        status="active",
        pinned=True,
        updated_after=datetime(2026, 4, 20, 12, 0, tzinfo=UTC),
        sort_by="updatedAt",
        order="desc",
        page=2,
        limit=10,
    )
    assert params.to_query() == [
        ("search", "protein gummies"),
        ("search", "creatine"),
        ("keywordMode", "all"),
        ("searchArea", "caption"),
        ("type", "ad"),
        ("status", "active"),
        ("pinned", "yes"),
        ("updatedAfter", "2026-04-20T12:00:00Z"),
        ("sortBy", "updatedAt"),
        ("order", "desc"),
        ("page", "2"),
        ("limit", "10"),
    ]


def test_defaults_send_nothing() -> None:
    """Unset parameters are left to the server's defaults."""
    assert ListParams().to_query() == []
    assert QueryBody().to_json() == {}


def test_datetimes_are_converted_to_utc_with_z() -> None:
    """An aware datetime in another zone is sent as UTC with a Z suffix."""
    paris = timezone(timedelta(hours=2))
    params = ListParams(updated_after=datetime(2026, 4, 20, 14, 0, 0, 5000, tzinfo=paris))
    assert params.to_query() == [("updatedAfter", "2026-04-20T12:00:00.005000Z")]


def test_single_string_search_becomes_one_keyword() -> None:
    """A bare string is one keyword, not a sequence of letters."""
    assert ListParams(search="gummies").search == ("gummies",)


def test_raw_strings_become_enums() -> None:
    """Raw strings from config are converted to the StrEnums."""
    params = ListParams(search_area="hashtag", sort_by="engagementRate", pinned="no")
    assert params.search_area is SearchArea.HASHTAG
    assert params.sort_by is SortBy.ENGAGEMENT_RATE
    assert params.pinned is Pinned.NO


def test_query_body_serializes_filters_and_extra() -> None:
    """The POST body carries the typed filters in camelCase plus the raw extra keys."""
    body = QueryBody(
        search=["protein gummies"],
        search_area="caption",
        type="ad",
        status="active",
        min_views=10000,
        max_views=20000,
        min_likes=5,
        min_engagement_rate=1.5,
        language="en",
        published_after=datetime(2026, 1, 1, tzinfo=UTC),
        published_before=datetime(2026, 2, 1, tzinfo=UTC),
        sort_by="views",
        order="desc",
        limit=10,
        extra={"country": "US"},
    )
    assert body.to_json() == {
        "search": ["protein gummies"],
        "searchArea": "caption",
        "type": "ad",
        "status": "active",
        "sortBy": "views",
        "order": "desc",
        "limit": 10,
        "minViews": 10000,
        "maxViews": 20000,
        "minLikes": 5,
        "minEngagementRate": 1.5,
        "language": "en",
        "publishedAfter": "2026-01-01T00:00:00Z",
        "publishedBefore": "2026-02-01T00:00:00Z",
        "country": "US",
    }


def test_with_page_keeps_filters_and_revalidates() -> None:
    """``with_page`` copies the filters; an invalid page is still refused."""
    params = ListParams(search="x", limit=5)
    assert params.with_page(3).to_query() == [("search", "x"), ("page", "3"), ("limit", "5")]
    with pytest.raises(ParameterError, match="page"):
        params.with_page(0)


def test_params_are_hashable_values() -> None:
    """Equal params compare and hash equal (usable as cache keys)."""
    assert hash(QueryBody(search="a", extra={"k": 1})) == hash(QueryBody(search="a"))
    assert ListParams(search="a", limit=5) == ListParams(search=("a",), limit=5)


BAD_LIST: list[tuple[dict[str, Any], str]] = [
    ({"limit": 0}, "limit must be 1..50"),
    ({"limit": 51}, "limit must be 1..50"),
    ({"limit": "10"}, "limit must be an integer"),
    ({"limit": True}, "limit must be an integer"),
    ({"page": 0}, "page must be >= 1"),
    ({"search_area": "title"}, "searchArea must be one of all, caption"),
    ({"type": "ads"}, "type must be one of ad, organic, all"),
    ({"status": "paused"}, "status must be one of"),
    ({"sort_by": "popular"}, "sortBy must be one of relevance"),
    ({"order": "up"}, "order must be one of asc, desc"),
    ({"keyword_mode": "some"}, "keywordMode must be one of any, all"),
    ({"pinned": "maybe"}, "pinned must be one of yes, no"),
    ({"updated_after": datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
    ({"updated_after": "2026-01-01"}, "updatedAfter must be a datetime"),
    ({"search": ["ok", " "]}, "non-empty strings"),
    ({"search": 5}, "string or a sequence"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_LIST)
def test_list_params_refuse_bad_values(kwargs: dict[str, Any], message: str) -> None:
    """Each invalid value raises ParameterError naming the parameter."""
    with pytest.raises(ParameterError, match=message):
        ListParams(**kwargs)


BAD_BODY: list[tuple[dict[str, Any], str]] = [
    ({"min_views": -1}, "minViews must be >= 0"),
    ({"min_views": 10, "max_views": 5}, "maxViews \\(5\\) is below minViews \\(10\\)"),
    ({"min_engagement_rate": -0.1}, "minEngagementRate must be >= 0"),
    ({"min_engagement_rate": float("nan")}, "minEngagementRate must be >= 0"),
    ({"min_engagement_rate": "high"}, "minEngagementRate must be a number"),
    ({"language": ""}, "language must be a non-empty string"),
    ({"published_before": datetime(2026, 1, 1)}, "publishedBefore must be timezone"),  # noqa: DTZ001
    ({"limit": 100}, "limit must be 1..50"),
    ({"extra": {"limit": 10}}, "extra repeats keys that typed fields own .*: limit"),
    ({"search": "x", "extra": {"search": ["y"]}}, "extra repeats keys"),
    ({"extra": {"when": datetime(2026, 1, 1, tzinfo=UTC)}}, "not JSON-serializable"),
    ({"extra": ["a"]}, "extra must be a mapping"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_BODY)
def test_query_body_refuses_bad_values(kwargs: dict[str, Any], message: str) -> None:
    """Each invalid body value raises ParameterError naming the key."""
    with pytest.raises(ParameterError, match=message):
        QueryBody(**kwargs)


def test_typed_body_keys_match_what_the_body_serializes() -> None:
    """Every key a fully set QueryBody sends is in TYPED_BODY_KEYS, and vice versa."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    body = QueryBody(
        search="a",
        keyword_mode="any",
        search_area="all",
        type="all",
        status="all",
        pinned="yes",
        updated_after=when,
        sort_by="newest",
        order="asc",
        page=1,
        limit=1,
        min_views=0,
        max_views=1,
        min_likes=0,
        min_engagement_rate=0,
        language="en",
        published_after=when,
        published_before=when,
    )
    assert set(body.to_json()) == TYPED_BODY_KEYS


def test_list_params_from_wire_names() -> None:
    """from_json takes camelCase keys, raw strings and ISO datetimes."""
    params = ListParams.from_json(
        {"search": "gummies", "searchArea": "hashtag", "updatedAfter": "2026-04-20T12:00:00Z"}
    )
    assert params.search_area is SearchArea.HASHTAG
    assert params.updated_after == datetime(2026, 4, 20, 12, tzinfo=UTC)
    with pytest.raises(ParameterError, match="unknown list parameter"):
        ListParams.from_json({"minViews": 5})
    with pytest.raises(ParameterError, match="updatedAfter must be ISO 8601"):
        ListParams.from_json({"updatedAfter": "yesterday"})


def test_query_body_from_a_raw_user_body() -> None:
    """Known body keys become typed (validated) fields; the rest pass through as extra."""
    body = QueryBody.from_json(
        {"search": ["a"], "minViews": 10, "publishedAfter": "2026-01-01T00:00:00+00:00", "x": 1}
    )
    assert body.min_views == 10
    assert body.published_after == datetime(2026, 1, 1, tzinfo=UTC)
    assert dict(body.extra) == {"x": 1}
    assert body.to_json() == {
        "search": ["a"],
        "minViews": 10,
        "publishedAfter": "2026-01-01T00:00:00Z",
        "x": 1,
    }
    with pytest.raises(ParameterError, match=r"limit must be 1\.\.50"):
        QueryBody.from_json({"limit": 500})
