"""Typed request parameters of the TikTok library routes, checked before anything is sent.

``ListParams`` serves ``GET /v1/tiktok/library`` and the shop route; ``QueryBody`` is the JSON
body of ``POST /v1/tiktok/library/query``. Both validate in ``__post_init__`` and raise
``ParameterError`` (never a foreign type), so a bad value costs no request and no credit.
Raw strings are accepted for every enum and converted; ``None`` means "let the server default".
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from watcher.errors import ParameterError
from watcher.models import KeywordMode, Order, Pinned, SearchArea, SortBy, StatusFilter, TypeFilter

MAX_LIMIT = 50


LIST_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "search": "search",
        "keywordMode": "keyword_mode",
        "searchArea": "search_area",
        "type": "type",
        "status": "status",
        "pinned": "pinned",
        "updatedAfter": "updated_after",
        "sortBy": "sort_by",
        "order": "order",
        "page": "page",
        "limit": "limit",
    }
)
"""Wire name -> field name of ``ListParams``."""

BODY_KEYS: Mapping[str, str] = MappingProxyType(
    {
        **LIST_KEYS,
        "minViews": "min_views",
        "maxViews": "max_views",
        "minLikes": "min_likes",
        "minEngagementRate": "min_engagement_rate",
        "language": "language",
        "publishedAfter": "published_after",
        "publishedBefore": "published_before",
    }
)
"""Wire name -> field name of ``QueryBody``."""

TYPED_BODY_KEYS = frozenset(BODY_KEYS)
"""Body keys a typed ``QueryBody`` field owns, so they are validated and never in ``extra``."""

_DATETIME_KEYS = frozenset({"updatedAfter", "publishedAfter", "publishedBefore"})


def _fields_from(raw: Mapping[str, object], keys: Mapping[str, str]) -> dict[str, object]:
    """Field values from wire-named ``raw``; ISO 8601 strings become datetimes."""
    fields: dict[str, object] = {}
    for key, value in raw.items():
        fields[keys[key]] = value
        if key in _DATETIME_KEYS and isinstance(value, str):
            try:
                fields[keys[key]] = datetime.fromisoformat(value)
            except ValueError as exc:
                raise ParameterError(f"{key} must be ISO 8601; got {value!r}") from exc
    return fields


_E = TypeVar("_E", bound=StrEnum)


def _enum(cls: type[_E], value: object, name: str) -> _E | None:
    if value is None or isinstance(value, cls):
        return value
    if cls is Pinned and isinstance(value, bool):
        return cls("yes" if value else "no")
    if isinstance(value, str):
        try:
            return cls(value)
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in cls)
    raise ParameterError(f"{name} must be one of {allowed}; got {value!r}")


def _int(value: object, name: str, *, low: int, high: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name} must be an integer; got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ParameterError(f"{name} must be {bounds}; got {value}")
    return value


def _datetime(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ParameterError(f"{name} must be a datetime; got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ParameterError(f"{name} must be timezone-aware; got naive {value.isoformat()}")
    return value


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, the form every route accepts."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _search(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    items: Sequence[object] = (value,) if isinstance(value, str) else _sequence(value)
    keywords: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ParameterError(f"search keywords must be non-empty strings; got {item!r}")
        keywords.append(item.strip())
    return tuple(keywords)


def _sequence(value: object) -> Sequence[object]:
    if isinstance(value, Sequence):
        return value
    raise ParameterError(f"search must be a string or a sequence of strings; got {value!r}")


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Filters:
    """The parameters every library route shares."""

    search: tuple[str, ...] = ()
    keyword_mode: KeywordMode | None = None
    search_area: SearchArea | None = None
    type: TypeFilter | None = None
    status: StatusFilter | None = None
    pinned: Pinned | None = None
    updated_after: datetime | None = None
    sort_by: SortBy | None = None
    order: Order | None = None
    page: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        _set(self, "search", _search(self.search))
        _set(self, "keyword_mode", _enum(KeywordMode, self.keyword_mode, "keywordMode"))
        _set(self, "search_area", _enum(SearchArea, self.search_area, "searchArea"))
        _set(self, "type", _enum(TypeFilter, self.type, "type"))
        _set(self, "status", _enum(StatusFilter, self.status, "status"))
        _set(self, "pinned", _enum(Pinned, self.pinned, "pinned"))
        _set(self, "updated_after", _datetime(self.updated_after, "updatedAfter"))
        _set(self, "sort_by", _enum(SortBy, self.sort_by, "sortBy"))
        _set(self, "order", _enum(Order, self.order, "order"))
        _set(self, "page", _int(self.page, "page", low=1))
        _set(self, "limit", _int(self.limit, "limit", low=1, high=MAX_LIMIT))

    def _common(self) -> dict[str, str | int]:
        pairs: dict[str, str | int | None] = {
            "keywordMode": self.keyword_mode,
            "searchArea": self.search_area,
            "type": self.type,
            "status": self.status,
            "pinned": self.pinned,
            "updatedAfter": format_datetime(self.updated_after) if self.updated_after else None,
            "sortBy": self.sort_by,
            "order": self.order,
            "page": self.page,
            "limit": self.limit,
        }
        return {
            k: (str(v) if isinstance(v, StrEnum) else v) for k, v in pairs.items() if v is not None
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ListParams(_Filters):
    """Query parameters of ``GET /v1/tiktok/library`` and ``GET /v1/shops/{id}/tiktok/library``."""

    def to_query(self) -> list[tuple[str, str]]:
        """Query pairs, camelCase, ``search`` repeated once per keyword, ``None`` omitted."""
        pairs = [("search", keyword) for keyword in self.search]
        pairs.extend((key, str(value)) for key, value in self._common().items())
        return pairs

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> ListParams:
        """Parameters from wire-named values (e.g. a config's ``searchArea: caption``).

        Unknown keys are refused; strings are converted and validated like any field.
        """
        unknown = sorted(set(raw) - set(LIST_KEYS))
        if unknown:
            raise ParameterError(f"unknown list parameter(s): {', '.join(unknown)}")
        return cls(**_fields_from(raw, LIST_KEYS))  # type: ignore[arg-type]  # checked at init

    def with_page(self, page: int, limit: int | None = None) -> ListParams:
        """A copy asking for another page (and optionally another limit)."""
        return dataclasses.replace(self, page=page, limit=self.limit if limit is None else limit)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryBody(_Filters):
    """JSON body of ``POST /v1/tiktok/library/query``.

    ``extra`` passes a user's raw body keys through unchanged (for filters this client does
    not model yet); a key that a typed field already sets is refused as ambiguous.
    """

    min_views: int | None = None
    max_views: int | None = None
    min_likes: int | None = None
    min_engagement_rate: float | None = None
    language: str | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None
    extra: Mapping[str, object] = dataclasses.field(  # keys outside TYPED_BODY_KEYS
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        _Filters.__post_init__(self)
        _set(self, "min_views", _int(self.min_views, "minViews", low=0))
        _set(self, "max_views", _int(self.max_views, "maxViews", low=0))
        _set(self, "min_likes", _int(self.min_likes, "minLikes", low=0))
        if (
            self.min_views is not None
            and self.max_views is not None
            and self.max_views < self.min_views
        ):
            raise ParameterError(
                f"maxViews ({self.max_views}) is below minViews ({self.min_views})"
            )
        rate = self.min_engagement_rate
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ParameterError(f"minEngagementRate must be a number; got {rate!r}")
            if not math.isfinite(rate) or rate < 0:
                raise ParameterError(f"minEngagementRate must be >= 0; got {rate!r}")
        if self.language is not None and (
            not isinstance(self.language, str) or not self.language.strip()
        ):
            raise ParameterError(f"language must be a non-empty string; got {self.language!r}")
        _set(self, "published_after", _datetime(self.published_after, "publishedAfter"))
        _set(self, "published_before", _datetime(self.published_before, "publishedBefore"))
        _set(self, "extra", self._checked_extra())

    def _checked_extra(self) -> Mapping[str, object]:
        if not isinstance(self.extra, Mapping):
            raise ParameterError(f"extra must be a mapping; got {self.extra!r}")
        extra = dict(self.extra)
        for key in extra:
            if not isinstance(key, str):
                raise ParameterError(f"extra keys must be strings; got {key!r}")
        clash = sorted(set(extra) & TYPED_BODY_KEYS)
        if clash:
            raise ParameterError(
                f"extra repeats keys that typed fields own (set those instead): {', '.join(clash)}"
            )
        try:
            json.dumps(extra)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"extra is not JSON-serializable: {exc}") from exc
        return MappingProxyType(extra)

    def _typed(self) -> dict[str, object]:
        body: dict[str, object] = {}
        if self.search:
            body["search"] = list(self.search)
        body.update(self._common())
        filters: dict[str, object] = {
            "minViews": self.min_views,
            "maxViews": self.max_views,
            "minLikes": self.min_likes,
            "minEngagementRate": self.min_engagement_rate,
            "language": self.language,
            "publishedAfter": format_datetime(self.published_after)
            if self.published_after
            else None,
            "publishedBefore": format_datetime(self.published_before)
            if self.published_before
            else None,
        }
        body.update({k: v for k, v in filters.items() if v is not None})
        return body

    def to_json(self) -> dict[str, object]:
        """The body, camelCase, ``None`` omitted, ``extra`` keys merged in."""
        body = self._typed()
        body.update(self.extra)
        return body

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> QueryBody:
        """A body from wire-named values (a user's raw body); unknown keys go to ``extra``."""
        typed = {k: v for k, v in raw.items() if k in BODY_KEYS}
        extra = {k: v for k, v in raw.items() if k not in BODY_KEYS}
        fields = _fields_from(typed, BODY_KEYS)
        return cls(**fields, extra=extra)  # type: ignore[arg-type]  # checked at init

    def with_page(self, page: int, limit: int | None = None) -> QueryBody:
        """A copy asking for another page (and optionally another limit)."""
        return dataclasses.replace(self, page=page, limit=self.limit if limit is None else limit)
