"""The state database's tables (sqlmodel). Only ``store`` and the migrations import this.

Times are stored as timezone-aware UTC; JSON columns hold figures and item snapshots.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, Dialect, Index, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        if dialect.name == "postgresql":  # timestamptz: aware in, whatever the session zone
            return value.astimezone(UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> object:
    return Field(
        default=None,
        sa_column=Column(UtcDateTime(), nullable=nullable, index=index),
    )


class WatchRow(SQLModel, table=True):
    """One watch, keyed by its name: the stable identity across reloads."""

    __tablename__ = "watch"

    name: str = Field(primary_key=True)
    fingerprint: str = ""
    has_baseline: bool = False
    baseline_at: datetime | None = _ts()  # type: ignore[assignment]
    watermark: datetime | None = _ts()  # type: ignore[assignment]
    refresh: str | None = None
    resume_page: int | None = None
    resume_offset: int | None = None
    resume_mark: datetime | None = _ts()  # type: ignore[assignment]
    resume_order: int | None = None
    exact: bool = True
    moves: bool | None = None
    max_lag_s: int | None = None
    last_poll_at: datetime | None = _ts()  # type: ignore[assignment]
    last_outcome: str | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    removed_at: datetime | None = _ts()  # type: ignore[assignment]


class ItemRow(SQLModel, table=True):
    """An item as one watch remembers it: the fields detection compares."""

    __tablename__ = "item_seen"

    watch: str = Field(primary_key=True, foreign_key="watch.name", ondelete="CASCADE")
    item_id: str = Field(primary_key=True)
    tiktok_id: str | None = None
    type: str | None = None
    status: str | None = None
    pinned: bool | None = None
    rank: int | None = None
    views: int | None = None
    updated_at: datetime | None = _ts()  # type: ignore[assignment]
    first_seen: datetime = _ts(nullable=False)  # type: ignore[assignment]
    last_seen: datetime = _ts(nullable=False)  # type: ignore[assignment]
    announced: bool = True
    follow_until: datetime | None = _ts()  # type: ignore[assignment]
    started_at: datetime | None = _ts()  # type: ignore[assignment]
    milestone: int = 0
    published_at: datetime | None = _ts()  # type: ignore[assignment]
    handle: str | None = None
    listed: bool = False
    outside: bool = False


class PollRow(SQLModel, table=True):
    """One poll of one watch: when, how it went, what it cost."""

    __tablename__ = "poll"
    __table_args__ = (Index("ix_poll_watch_started", "watch", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    watch: str
    started_at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    duration_ms: int = 0
    outcome: str
    items: int = 0
    events: int = 0
    credits: int = 0
    error: str | None = None


class EventRow(SQLModel, table=True):
    """A detected event; ``key`` is deterministic, so a re-run poll inserts nothing."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)
    watch: str = Field(index=True)
    kind: str
    item_id: str | None = None
    tiktok_id: str | None = None
    detected_at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    poll_id: int | None = None
    figures: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON))
    item: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))


class DeliveryRow(SQLModel, table=True):
    """The outbox: one row per event, notifier and URL position (never the URL itself)."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "notifier", "url_index"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE")
    notifier: str
    url_index: int
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    last_error: str | None = None
    sent_at: datetime | None = _ts()  # type: ignore[assignment]
    silence_id: int | None = None
    release: str | None = None


class CreditRow(SQLModel, table=True):
    """The credit ledger: what each poll spent and the balance the API reported."""

    __tablename__ = "credit_ledger"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    watch: str | None = None
    credits: int = 0
    remaining: int | None = None


class EpisodeRow(SQLModel, table=True):
    """An open ops episode (e.g. a failing watch), so its alert fires once per episode."""

    __tablename__ = "ops_episode"

    kind: str = Field(primary_key=True)
    subject: str = Field(primary_key=True)
    opened_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


class MetaRow(SQLModel, table=True):
    """Small key/value facts (the balance last seen, the API's capabilities)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


class SilenceRow(SQLModel, table=True):
    """A silence (``watcher silence add``): matchers, when it ends, whether it said so."""

    __tablename__ = "silence"

    id: int | None = Field(default=None, primary_key=True)
    watch: str | None = None
    handle: str | None = None
    shop: str | None = None
    item: str | None = None
    kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    reason: str | None = None
    created_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    ends_at: datetime = _ts(nullable=False, index=True)  # type: ignore[assignment]
    expired_at: datetime | None = _ts()  # type: ignore[assignment]
    summarized_at: datetime | None = _ts()  # type: ignore[assignment]


class DigestPartRow(SQLModel, table=True):
    """A part of a multi-part digest that a URL's service took: which part, of which
    digest (its delivery rows), and the message's fingerprint (so a digest rendered
    differently since is sent whole). At most one digest per URL is under way."""

    __tablename__ = "digest_part"

    notifier: str = Field(primary_key=True)
    url_index: int = Field(primary_key=True)
    number: int = Field(primary_key=True)
    deliveries: str
    """The digest's delivery row ids, comma-separated: it names the digest."""
    fingerprint: str


class DigestMarkRow(SQLModel, table=True):
    """A digest notifier's schedule: the last fire time digested, under which schedule."""

    __tablename__ = "digest_mark"

    notifier: str = Field(primary_key=True)
    schedule: str
    last_at: datetime = _ts(nullable=False)  # type: ignore[assignment]


class LeaseRow(SQLModel, table=True):
    """A lease shared by replicas: ``watch:NAME`` (who polls it), ``outbox`` (who
    delivers) or ``replica:ID`` (a replica's heartbeat). Lost at ``expires_at`` unless
    its holder renews it; times come from the database's clock on PostgreSQL."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True)
    holder: str = Field(index=True)
    acquired_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
    expires_at: datetime = _ts(nullable=False)  # type: ignore[assignment]
