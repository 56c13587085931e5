"""The watches.yaml schema as pydantic models: what each key may hold.

These models validate the plain data read by :mod:`watcher.config.yaml_source`; they are not
the domain objects (those are the frozen dataclasses of :mod:`watcher.config`). Field
names are the YAML keys; ``query`` uses the API's camelCase keys as aliases. Every model
forbids unknown keys. Checks that need the whole file (notifier names, duplicate watch
names, one target per watch) live in :mod:`watcher.config.checks`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
)

from watcher.delivery_rules import WEEKDAYS
from watcher.detect import FirstRun as DetectFirstRun
from watcher.models import (
    ITEM_KINDS,
    EventKind,
    KeywordMode,
    Order,
    Pinned,
    SearchArea,
    SortBy,
    StatusFilter,
    TypeFilter,
)
from watcher.schedule import parse_cron, parse_duration

# The watch vocabulary is the domain's (watcher.models, detect.FirstRun): one set of enums
# for the schema, the planner and the client. The aliases keep the config's own names.
WatchType = TypeFilter
FirstRun = DetectFirstRun
Priority = Literal["high", "normal", "low"]

DEFAULT_BASE_URL = "https://api.trendtrack.io"
DEFAULT_DATABASE = "sqlite:///watcher.db"
TARGET_KEYS = ("shop", "hashtag", "handle", "search", "query")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_URL = re.compile(r"console://\S*|[A-Za-z][A-Za-z0-9+.-]*://\S+")  # console:// prints here


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        # pydantic turns ValueError (not TypeError) into a located validation error
        raise ValueError(f"a duration is a string like 30s, 15m, 1h or 1d, not {value!r}")  # noqa: TRY004
    return parse_duration(value)


def _version(value: int) -> int:
    if value != 1:
        raise ValueError(f"unsupported version {value}: this watcher reads version: 1")
    return value


def _cron(value: str) -> str:
    return parse_cron(value).expr


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as UTC or Europe/Paris"
        ) from None
    return value


# What a watch's `events` may list; `baseline` follows `on_first_run` instead.
WATCH_EVENT_KINDS = ITEM_KINDS - {EventKind.BASELINE}


def _item_kind(value: str) -> str:
    """An event kind a route may name: any item kind, baseline included."""
    if value not in {k.value for k in EventKind}:
        known = ", ".join(sorted(k.value for k in ITEM_KINDS))
        raise ValueError(f"unknown event kind {value!r} (known: {known})")
    if EventKind(value) not in ITEM_KINDS:
        raise ValueError(
            f"{value!r} is an ops event: it goes to ops_notify, not to a watch or a route"
        )
    return value


def _watch_kind(value: str) -> str:
    """An event kind a watch may subscribe to."""
    if value == EventKind.BASELINE:
        raise ValueError("'baseline' is not listed in events: on_first_run controls it")
    if value not in {k.value for k in EventKind}:
        known = ", ".join(sorted(k.value for k in WATCH_EVENT_KINDS))
        raise ValueError(f"unknown event kind {value!r} (known: {known})")
    return _item_kind(value)


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"bad name {value!r}: use only letters, digits, '.', '_' and '-' (no spaces)"
        )
    return value


def _url(value: SecretStr) -> SecretStr:
    # Never echo the URL: it carries tokens and passwords.
    if not _URL.fullmatch(value.get_secret_value().strip()):
        raise ValueError("a notifier URL looks like scheme://... (an Apprise URL)")
    return SecretStr(value.get_secret_value().strip())


def http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise ValueError(f"base_url must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _iso_datetime(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or time") from None
    return value


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"shop must be a shop id (a UUID), not {value!r}") from None


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Cron = Annotated[str, AfterValidator(_cron)]
ItemKind = Annotated[str, AfterValidator(_item_kind)]
WatchKind = Annotated[str, AfterValidator(_watch_kind)]
Name = Annotated[str, AfterValidator(_name)]
Text = Annotated[str, AfterValidator(_not_blank)]
Keywords = Annotated[tuple[Text, ...], BeforeValidator(_one_or_many), Field(min_length=1)]
NotifierNames = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]
IsoDateTime = Annotated[str, AfterValidator(_iso_datetime)]
NonNegative = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiModel(_Model):
    base_url: Annotated[str, AfterValidator(http_url)] = DEFAULT_BASE_URL
    api_key: SecretStr | None = None
    max_requests_per_minute: Positive = 60
    max_concurrency: Positive = 4
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0


class BudgetModel(_Model):
    monthly_credits: Positive | None = None


class StateModel(_Model):
    database: Text = DEFAULT_DATABASE
    retention: Duration = timedelta(days=90)
    removed_watch_grace: Duration = timedelta(days=7)
    lease: Duration = timedelta(seconds=30)
    replica_id: Text | None = None


class OpsModel(_Model):
    failing_after: Positive = 3
    credits_low_below: NonNegative = 1000


class DeliveryModel(_Model):
    max_attempts: Positive = 8
    digest_threshold: Positive = 10
    backoff_seconds: Annotated[float, Field(gt=0)] = 30.0


class HealthModel(_Model):
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    host: Text = "127.0.0.1"
    token: SecretStr | None = None


class RankJumpModel(_Model):
    min_climb: Positive | None = None
    track: Annotated[int, Field(ge=1, le=50)] | None = None


def _clock(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value.strip()):
        # pydantic turns ValueError (not TypeError) into a located validation error
        raise ValueError(f"a time of day is written HH:MM (e.g. 22:00), not {value!r}")
    return value.strip()


def _weekday(value: object) -> str:
    day = str(value).strip().lower()[:3]
    if day not in WEEKDAYS:
        raise ValueError(f"a day is one of {', '.join(WEEKDAYS)}, not {value!r}")
    return day


ClockTime = Annotated[str, BeforeValidator(_clock)]
Weekday = Annotated[str, BeforeValidator(_weekday)]


class QuietHoursModel(_Model):
    from_: ClockTime = Field(alias="from")
    to: ClockTime
    days: (
        Annotated[tuple[Weekday, ...], BeforeValidator(_one_or_many), Field(min_length=1)] | None
    ) = None


class DigestModel(_Model):
    every: Duration | None = None
    cron: Cron | None = None


class NotifierModel(_Model):
    quiet_hours: QuietHoursModel | None = None
    digest: DigestModel | None = None
    urls: Annotated[
        tuple[Annotated[SecretStr, AfterValidator(_url)], ...],
        BeforeValidator(_one_or_many),
        Field(min_length=1),
    ]


class QueryBody(_Model):
    """A raw ``POST /v1/tiktok/library/query`` body, keys as the API spells them."""

    search: Keywords | None = None
    keyword_mode: KeywordMode | None = Field(None, alias="keywordMode")
    pinned: Pinned | None = None
    search_area: SearchArea | None = Field(None, alias="searchArea")
    type: WatchType | None = None
    status: StatusFilter | None = None
    sort_by: SortBy | None = Field(None, alias="sortBy")
    order: Order | None = None
    page: Positive | None = None
    limit: Annotated[int, Field(ge=1, le=50)] | None = None
    updated_after: IsoDateTime | None = Field(None, alias="updatedAfter")
    min_views: NonNegative | None = Field(None, alias="minViews")
    max_views: NonNegative | None = Field(None, alias="maxViews")
    min_likes: NonNegative | None = Field(None, alias="minLikes")
    min_engagement_rate: Annotated[float, Field(ge=0)] | None = Field(
        None, alias="minEngagementRate"
    )
    language: Text | None = None
    published_after: IsoDateTime | None = Field(None, alias="publishedAfter")
    published_before: IsoDateTime | None = Field(None, alias="publishedBefore")


class WatchOptions(_Model):
    """What a watch may set and ``defaults`` may set for every watch; None = inherit."""

    every: Duration | None = None
    cron: Cron | None = None
    events: Annotated[tuple[WatchKind, ...], Field(min_length=1)] | None = None
    on_first_run: FirstRun | None = None
    notify: NotifierNames | None = None
    type: WatchType | None = None
    status: StatusFilter | None = None
    min_views: NonNegative | None = None
    language: Text | None = None
    priority: Priority | None = None
    max_credits_per_poll: Positive | None = None
    filter_window: Duration | None = None
    rank_jump: RankJumpModel | None = None
    milestones: (
        Annotated[tuple[Annotated[int, Field(ge=1, le=3650)], ...], Field(min_length=1)] | None
    ) = None
    enabled: bool | None = None


class WatchModel(WatchOptions):
    name: Name
    shop: Annotated[str, AfterValidator(_uuid)] | None = None
    hashtag: Text | None = None
    handle: Text | None = None
    search: Keywords | None = None
    search_area: SearchArea | None = None
    keyword_mode: KeywordMode | None = None
    query: QueryBody | None = None


class ConfigModel(_Model):
    """The whole file."""

    version: Annotated[int, AfterValidator(_version)]
    api: ApiModel = ApiModel()
    budget: BudgetModel = BudgetModel()
    state: StateModel = StateModel()
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    templates_dir: Text | None = None
    route: dict[ItemKind, NotifierNames] = Field(default_factory=dict)
    ops: OpsModel = OpsModel()
    ops_notify: NotifierNames = ()
    delivery: DeliveryModel = DeliveryModel()
    health: HealthModel = HealthModel()
    defaults: WatchOptions = WatchOptions()
    notifiers: dict[Name, NotifierModel] = Field(default_factory=dict)
    watches: tuple[WatchModel, ...] = ()


def known_keys() -> frozenset[str]:
    """Every key the schema knows, for "did you mean" hints on unknown ones."""
    models: tuple[type[BaseModel], ...] = (
        ConfigModel,
        ApiModel,
        BudgetModel,
        StateModel,
        OpsModel,
        DeliveryModel,
        HealthModel,
        RankJumpModel,
        NotifierModel,
        QuietHoursModel,
        DigestModel,
        QueryBody,
        WatchModel,
    )
    keys: set[str] = set()
    for model in models:
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
    return frozenset(keys)
