"""The state store: the one module that talks to the database (through sqlmodel).

SQLite is tuned for a long-running daemon (WAL, ``busy_timeout``, ``synchronous=NORMAL``,
foreign keys on) and written by one writer at a time. A poll's items, events, outbox rows,
poll record and credits are committed in ONE transaction: a crash leaves the poll either
fully applied or not at all, and since event keys are deterministic a re-run poll records
nothing twice. Upserts use the dialect's ``ON CONFLICT``; the schema is migrated with
alembic on open. Nothing outside this module knows which database is behind it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete, event, func, inspect, or_, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.base import Executable
from sqlmodel import Session, col, create_engine, select

from watcher.detect import Detection, Seen, WatchState
from watcher.errors import StoreError
from watcher.models import Event, EventKind, item_to_json
from watcher.planner.steps import Outcome, Resume
from watcher.store.failures import in_words
from watcher.store.readonly import read_only_engine
from watcher.store.snapshots import with_snapshots
from watcher.store.tables import (
    CreditRow,
    DeliveryRow,
    EpisodeRow,
    EventRow,
    ItemRow,
    MetaRow,
    PollRow,
    WatchRow,
)
from watcher.store.urls import engine_url
from watcher.store.values import (
    Applied,
    DeliveryView,
    DueDelivery,
    EventView,
    PollRecord,
    Routes,
    WatchInfo,
    event_from_row,
    seen_from_row,
    seen_values,
)

__all__ = [
    "SCHEMA_HEAD",
    "Applied",
    "DeliveryView",
    "DueDelivery",
    "EventView",
    "PollRecord",
    "Resume",
    "Routes",
    "Store",
    "WatchInfo",
]

SCHEMA_HEAD = "0003_delivery_control"
_IN_CHUNK = 500
"""Keys per ``IN (...)`` lookup, well under SQLite's bound-parameter limit."""
"""The latest migration's revision; ``tests/test_store.py`` checks it against alembic."""


def _existing_sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = Path(url.removeprefix(prefix).split("?", 1)[0])
    return path if path.is_file() else None


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA busy_timeout=10000",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()


_ITEM_KEEP = frozenset({"watch", "item_id", "first_seen"})
_ITEM_COLUMNS = tuple(ItemRow.model_fields)
"""Item columns an upsert never overwrites: the key, and when the item was first seen."""


def _sqlite_text(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite dialect stores it: naive UTC text."""
    if value.tzinfo is None:
        raise StoreError("naive datetime given to the store")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_rows(rows: Sequence[Mapping[str, object]]) -> list[tuple[object, ...]]:
    """Rows as SQLAlchemy's SQLite dialect stores them: UTC datetimes as text, JSON
    columns as JSON text. A poll's rows share few distinct times, each converted once."""
    texts: dict[datetime, str] = {}

    def convert(value: object) -> object:
        if isinstance(value, datetime):
            text = texts.get(value)
            if text is None:
                text = texts[value] = _sqlite_text(value)
            return text
        if isinstance(value, dict | list):
            return json.dumps(value)
        return value

    return [tuple(convert(v) for v in row.values()) for row in rows]


def _sqlite_item_rows(watch: str, seen: Iterable[Seen]) -> list[tuple[object, ...]]:
    """Items as SQLite rows in ``_ITEM_COLUMNS`` order, built directly: this runs for
    every row every poll reads, where the generic ``_sqlite_rows`` costs twice as much."""
    texts: dict[datetime, str] = {}

    def text(value: datetime | None) -> str | None:
        if value is None:
            return None
        converted = texts.get(value)
        if converted is None:
            converted = texts[value] = _sqlite_text(value)
        return converted

    return [
        (
            watch,
            s.item_id,
            s.tiktok_id,
            s.type.value if s.type else None,
            s.status.value if s.status else None,
            s.pinned,
            s.rank,
            s.views,
            text(s.updated_at),
            text(s.first_seen),
            text(s.last_seen),
            s.announced,
            text(s.follow_until),
            text(s.started_at),
            s.milestone,
        )
        for s in seen
    ]


def _sqlite_insert(table: str, columns: Sequence[str], conflict: str = "") -> str:
    """``INSERT`` SQL with ``?`` marks for our own table and column names."""
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"  # noqa: S608  # our own names


class Store:
    """The state database. Thread-safe; one writer at a time."""

    def __init__(self, url: str, *, migrate: bool = True, read_only: bool = False) -> None:
        """Open (and migrate) the database at ``url``.

        ``read_only`` (for commands that only read): an existing SQLite file is opened
        with ``mode=ro``, without the WAL pragma or a migration, so it works in a
        read-only folder; every write then fails.
        """
        self.url = url
        self._write_lock = threading.Lock()
        ro_path = _existing_sqlite_file(url) if read_only else None
        try:
            if ro_path is not None:
                self.engine = read_only_engine(ro_path)
                migrate = False
            elif url.startswith("sqlite"):
                self.engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 10}
                )
                _install_sqlite_pragmas(self.engine)
            else:
                self.engine = create_engine(engine_url(url), pool_pre_ping=True)
            self._insert = (
                postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
            )
            if migrate:
                self.migrate()
        except (SQLAlchemyError, ImportError) as exc:  # ImportError: the driver is missing
            raise StoreError(f"cannot open the state database: {in_words(exc)}") from exc

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def migrate(self) -> None:
        """Bring the schema to the latest version (alembic, batch mode for SQLite).

        A database already at ``SCHEMA_HEAD`` skips alembic (and its import time) entirely.
        """
        if self.schema_version() == SCHEMA_HEAD:
            return
        from alembic import command  # noqa: PLC0415  # only needed when the schema moves
        from alembic.config import Config  # noqa: PLC0415
        from alembic.util import CommandError  # noqa: PLC0415

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("watcher.store") / "migrations"))
        with self._write_lock, self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            try:
                command.upgrade(cfg, "head")
            except CommandError as exc:  # e.g. a database written by a newer watcher
                raise StoreError(f"cannot migrate the state database: {in_words(exc)}") from exc

    def schema_version(self) -> str | None:
        """The alembic revision the database is at, or None for a new database."""
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            return str(row[0]) if row else None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_lock:
            try:
                with Session(self.engine) as session, session.begin():
                    yield session
            except SQLAlchemyError as exc:
                raise StoreError(f"state database write failed: {in_words(exc)}") from exc

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine) as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"state database read failed: {in_words(exc)}") from exc

    # --- watches and their memory -------------------------------------------------------

    def load_state(self, watch: str) -> WatchState:
        """The watch's memory, or an empty one for a watch never polled."""
        with self._read() as s:
            row = s.get(WatchRow, watch)
            if row is None:
                return WatchState()
            items = s.exec(select(ItemRow).where(col(ItemRow.watch) == watch))
            return WatchState(
                baseline_at=row.baseline_at,
                watermark=row.watermark,
                refresh=row.refresh,
                exact=row.exact,
                has_baseline=row.has_baseline,
                items={r.item_id: seen_from_row(r) for r in items},
            )

    def resume(self, watch: str) -> Resume:
        """Where the watch's unfinished change feed goes on (nothing pending by default)."""
        return self.progress(watch)[2]

    def consecutive_failures(self, watch: str) -> int:
        with self._read() as s:
            row = s.get(WatchRow, watch)
            return row.consecutive_failures if row else 0

    def watches(self) -> list[WatchInfo]:
        with self._read() as s:
            rows = s.exec(select(WatchRow).order_by(col(WatchRow.name)))
            return [
                WatchInfo(
                    name=r.name,
                    last_poll_at=r.last_poll_at,
                    last_outcome=r.last_outcome,
                    last_error=r.last_error,
                    consecutive_failures=r.consecutive_failures,
                    refresh=r.refresh,
                    has_baseline=r.has_baseline,
                    removed_at=r.removed_at,
                    exact=r.exact,
                )
                for r in rows
            ]

    def apply_poll(self, record: PollRecord, routes: Routes) -> Applied:
        """Store one poll atomically: memory, events, their outbox rows, poll, credits."""
        with self._write() as s:
            row = s.get(WatchRow, record.watch) or WatchRow(name=record.watch)
            row.fingerprint = record.fingerprint or row.fingerprint
            row.last_poll_at = record.started_at
            outcome = Outcome(record.outcome)
            row.last_outcome = outcome.value
            row.removed_at = None
            failed = outcome.failure
            row.consecutive_failures = row.consecutive_failures + 1 if failed else 0
            row.last_error = record.error if failed else None
            detection = record.detection
            if detection is not None:
                state = detection.state
                row.has_baseline = state.has_baseline
                row.baseline_at = state.baseline_at
                row.watermark = state.watermark
                row.refresh = state.refresh
                row.exact = state.exact
                row.resume_page = record.resume.page
                row.resume_offset = record.resume.offset
                row.resume_mark = record.resume.mark
            s.add(row)
            s.flush()
            poll = PollRow(
                watch=record.watch,
                started_at=record.started_at,
                duration_ms=record.duration_ms,
                outcome=outcome.value,
                items=len(detection.touched) if detection else 0,
                events=len(detection.events) if detection else 0,
                credits=record.credits,
                error=record.error,
            )
            s.add(poll)
            s.flush()
            poll_id = int(poll.id or 0)
            if record.credits or record.remaining is not None:
                s.add(
                    CreditRow(
                        at=record.started_at,
                        watch=record.watch,
                        credits=record.credits,
                        remaining=record.remaining,
                    )
                )
            new_events: tuple[Event, ...] = ()
            if detection is not None:
                self._upsert_items(s, record.watch, detection)
                new_events = self._insert_events(
                    s, detection.events, poll_id, routes, record.started_at
                )
            return Applied(poll_id, new_events)

    def _bulk_insert(
        self,
        s: Session,
        rows: Sequence[Mapping[str, object]],
        statement: Executable,
        sqlite_conflict: str = "",
    ) -> None:
        """Insert many rows with one statement. On SQLite (the hot path of every poll) the
        driver's own executemany, several times faster than SQLAlchemy binding each row;
        elsewhere SQLAlchemy's ``statement``. ``sqlite_conflict`` mirrors its conflict rule."""
        if not rows:
            return
        if self.engine.dialect.name == "sqlite":
            table = statement.table.name  # type: ignore[attr-defined]
            sql = _sqlite_insert(table, list(rows[0]), sqlite_conflict)
            s.connection().exec_driver_sql(sql, _sqlite_rows(rows))
            return
        s.connection().execute(statement, list(rows))

    def _upsert_items(self, s: Session, watch: str, detection: Detection) -> None:
        """Upsert the touched items with one statement executed for many rows."""
        seen = [detection.state.items[i] for i in sorted(detection.touched)]
        if not seen:
            return
        kept = [c for c in _ITEM_COLUMNS if c not in _ITEM_KEEP]
        if self.engine.dialect.name == "sqlite":
            updates = ", ".join(f"{c} = excluded.{c}" for c in kept)
            conflict = f"ON CONFLICT (watch, item_id) DO UPDATE SET {updates}"
            sql = _sqlite_insert("item_seen", _ITEM_COLUMNS, conflict)
            s.connection().exec_driver_sql(sql, _sqlite_item_rows(watch, seen))
            return
        stmt = self._insert(ItemRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=["watch", "item_id"], set_={c: stmt.excluded[c] for c in kept}
        )
        s.connection().execute(stmt, [seen_values(watch, item) for item in seen])

    def _insert_events(
        self,
        s: Session,
        events: Iterable[Event],
        poll_id: int | None,
        routes: Routes,
        queued_at: datetime,
    ) -> tuple[Event, ...]:
        """Insert new events and their outbox rows, due at ``queued_at`` (the local clock:
        ``detected_at`` is the API's, which may run ahead or behind).

        A handful of statements whatever the number of events: the keys already recorded
        (by an earlier run of this poll) are looked up, the others inserted many at a time.
        """
        fresh: dict[str, Event] = {}
        for ev in events:
            fresh.setdefault(ev.key, ev)
        if not fresh:
            return ()
        connection = s.connection()
        keys = list(fresh)
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            known = select(col(EventRow.key)).where(col(EventRow.key).in_(chunk))
            for key in connection.execute(known).scalars():
                del fresh[key]  # recorded by an earlier run of this poll
        if not fresh:
            return ()
        fresh = with_snapshots(connection, fresh)
        rows = [
            {
                "key": ev.key,
                "watch": ev.watch,
                "kind": ev.kind.value,
                "item_id": ev.item.id if ev.item else None,
                "tiktok_id": ev.item.tiktok_id if ev.item else None,
                "detected_at": ev.detected_at,
                "created_at": queued_at,
                "poll_id": poll_id,
                "figures": ev.figures,
                "item": item_to_json(ev.item) if ev.item else None,
            }
            for ev in fresh.values()
        ]
        new_events = self._insert(EventRow).on_conflict_do_nothing(index_elements=["key"])
        self._bulk_insert(s, rows, new_events, "ON CONFLICT (key) DO NOTHING")
        ids: dict[str, int] = {}
        new_keys = list(fresh)
        for start in range(0, len(new_keys), _IN_CHUNK):
            chunk = new_keys[start : start + _IN_CHUNK]
            query = select(col(EventRow.key), col(EventRow.id)).where(col(EventRow.key).in_(chunk))
            ids.update({key: event_id or 0 for key, event_id in connection.execute(query)})
        deliveries = [
            {
                "event_id": ids[ev.key],
                "notifier": notifier,
                "url_index": index,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": queued_at,
            }
            for ev in fresh.values()
            for notifier, url_count in routes.get(ev.kind, ())
            for index in range(url_count)
        ]
        self._bulk_insert(s, deliveries, self._insert(DeliveryRow))
        return tuple(fresh.values())

    def record_event(self, ev: Event, routes: Routes) -> bool:
        """Record an event outside a poll (ops events); False if its key exists."""
        with self._write() as s:
            return bool(self._insert_events(s, [ev], None, routes, ev.detected_at))

    def forget_watch(self, watch: str) -> None:
        """Drop a watch's memory so its next poll starts with a fresh baseline."""
        with self._write() as s:
            s.exec(delete(ItemRow).where(col(ItemRow.watch) == watch))
            s.exec(delete(WatchRow).where(col(WatchRow.name) == watch))

    # --- the outbox ---------------------------------------------------------------------

    def due_deliveries(self, now: datetime, limit: int = 500) -> list[DueDelivery]:
        """Pending outbox rows whose next attempt is due, oldest event first."""
        with self._read() as s:
            rows = s.exec(
                select(DeliveryRow, EventRow)
                .join(EventRow, col(EventRow.id) == col(DeliveryRow.event_id))
                .where(col(DeliveryRow.state) == "pending", col(DeliveryRow.next_attempt_at) <= now)
                .order_by(col(EventRow.id), col(DeliveryRow.id))
                .limit(limit)
            ).all()
            return [
                DueDelivery(
                    id=d.id or 0,
                    event_id=e.id or 0,
                    poll_id=e.poll_id,
                    notifier=d.notifier,
                    url_index=d.url_index,
                    attempts=d.attempts,
                    event=event_from_row(e),
                    next_attempt_at=d.next_attempt_at,
                    release=d.release,
                )
                for d, e in rows
            ]

    def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        with self._write() as s:
            s.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(ids))
                .values(state="sent", sent_at=now, attempts=col(DeliveryRow.attempts) + 1)
            )

    def mark_failed(
        self, ids: Sequence[int], error: str, next_attempt_at: datetime, *, dead: bool
    ) -> None:
        with self._write() as s:
            s.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.id).in_(ids))
                .values(
                    state="dead" if dead else "pending",
                    last_error=error[:500],
                    next_attempt_at=next_attempt_at,
                    attempts=col(DeliveryRow.attempts) + 1,
                )
            )

    def outbox_depth(self) -> int:
        with self._read() as s:
            count = s.exec(select(func.count()).where(col(DeliveryRow.state) == "pending")).one()
            return int(count or 0)

    # --- ops episodes and small facts ---------------------------------------------------

    def open_episode(self, kind: EventKind, subject: str, now: datetime) -> bool:
        """Open an episode; True only if it was not open already (alert once)."""
        with self._write() as s:
            stmt = (
                self._insert(EpisodeRow)
                .values(kind=kind.value, subject=subject, opened_at=now)
                .on_conflict_do_nothing(index_elements=["kind", "subject"])
            )
            return bool(s.exec(stmt).rowcount)

    def close_episode(self, kind: EventKind, subject: str) -> bool:
        """Close an episode; True only if it was open (e.g. to send a recovery)."""
        with self._write() as s:
            result = s.exec(
                delete(EpisodeRow).where(
                    col(EpisodeRow.kind) == kind.value,
                    col(EpisodeRow.subject) == subject,
                )
            )
            return bool(result.rowcount)

    def open_episodes(self) -> set[tuple[str, str]]:
        """Every open episode as (kind, subject)."""
        with self._read() as s:
            return {(row.kind, row.subject) for row in s.exec(select(EpisodeRow))}

    def progress(self, watch: str) -> tuple[bool, str | None, Resume]:
        """What the refresh gate needs, from the watch row alone: whether the watch has a
        baseline, the refresh it last processed, and any unfinished feed."""
        with self._read() as s:
            row = s.get(WatchRow, watch)
            if row is None:
                return False, None, Resume()
            resume = Resume(row.resume_page, row.resume_offset, row.resume_mark)
            return row.has_baseline, row.refresh, resume

    def episode_open(self, kind: EventKind, subject: str) -> bool:
        with self._read() as s:
            return s.get(EpisodeRow, (kind.value, subject)) is not None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as s:
            stmt = self._insert(MetaRow).values(key=key, value=value)
            s.exec(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))

    def delete_meta(self, key: str) -> None:
        with self._write() as s:
            s.exec(delete(MetaRow).where(col(MetaRow.key) == key))

    def get_meta(self, key: str) -> str | None:
        with self._read() as s:
            row = s.get(MetaRow, key)
            return row.value if row else None

    # --- reporting ----------------------------------------------------------------------

    def events(
        self, *, since: datetime | None = None, watch: str | None = None, limit: int = 1000
    ) -> list[EventView]:
        """Events newest first, each with its delivery state per notifier URL."""
        with self._read() as s:
            query = select(EventRow).order_by(col(EventRow.id).desc()).limit(limit)
            if since is not None:
                query = query.where(col(EventRow.detected_at) >= since)
            if watch is not None:
                query = query.where(col(EventRow.watch) == watch)
            rows = list(s.exec(query))
            ids = [r.id for r in rows]
            deliveries: dict[int, list[DeliveryView]] = {}
            if ids:
                for d in s.exec(
                    select(DeliveryRow)
                    .where(col(DeliveryRow.event_id).in_(ids))
                    .order_by(col(DeliveryRow.notifier), col(DeliveryRow.url_index))
                ):
                    deliveries.setdefault(d.event_id, []).append(
                        DeliveryView(d.notifier, d.url_index, d.state, d.attempts, d.last_error)
                    )
            return [
                EventView(r.id or 0, event_from_row(r), tuple(deliveries.get(r.id or 0, ())))
                for r in rows
            ]

    def credits_spent(
        self, *, since: datetime, until: datetime | None = None, watch: str | None = None
    ) -> int:
        with self._read() as s:
            query = select(func.coalesce(func.sum(CreditRow.credits), 0)).where(
                col(CreditRow.at) >= since
            )
            if until is not None:
                query = query.where(col(CreditRow.at) < until)
            if watch is not None:
                query = query.where(col(CreditRow.watch) == watch)
            return int(s.exec(query).one() or 0)

    def last_balance(self) -> int | None:
        with self._read() as s:
            row = s.exec(
                select(col(CreditRow.remaining))
                .where(col(CreditRow.remaining).is_not(None))
                .order_by(col(CreditRow.id).desc())
                .limit(1)
            ).first()
            return int(row) if row is not None else None

    def record_credits(self, at: datetime, credits: int, remaining: int | None) -> None:
        with self._write() as s:
            s.add(CreditRow(at=at, watch=None, credits=credits, remaining=remaining))

    # --- retention ----------------------------------------------------------------------

    def mark_removed(self, configured: Iterable[str], now: datetime) -> None:
        """Note when watches left the config; their memory is dropped after a grace period."""
        names = list(configured)
        with self._write() as s:
            s.exec(
                update(WatchRow)
                .where(col(WatchRow.name).not_in(names), col(WatchRow.removed_at).is_(None))
                .values(removed_at=now)
            )
            s.exec(update(WatchRow).where(col(WatchRow.name).in_(names)).values(removed_at=None))

    def prune(self, now: datetime, *, retention: timedelta, grace: timedelta) -> int:
        """Delete old polls, ledger rows and delivered/dead events; forget long-removed watches.

        Undelivered events are never pruned: nothing recorded is lost before delivery.
        """
        cutoff = now - retention
        with self._write() as s:
            removed = 0
            removed += s.exec(delete(PollRow).where(col(PollRow.started_at) < cutoff)).rowcount
            removed += s.exec(delete(CreditRow).where(col(CreditRow.at) < cutoff)).rowcount
            pending = select(col(DeliveryRow.event_id)).where(col(DeliveryRow.state) == "pending")
            old = select(col(EventRow.id)).where(
                col(EventRow.detected_at) < cutoff,
                col(EventRow.id).not_in(pending),
            )
            s.exec(delete(DeliveryRow).where(col(DeliveryRow.event_id).in_(old)))
            removed += s.exec(
                delete(EventRow).where(
                    col(EventRow.detected_at) < cutoff,
                    col(EventRow.id).not_in(pending),
                )
            ).rowcount
            gone = select(col(WatchRow.name)).where(
                and_(col(WatchRow.removed_at).is_not(None), col(WatchRow.removed_at) < now - grace)
            )
            names = list(s.exec(gone))
            if names:
                removed += s.exec(delete(ItemRow).where(col(ItemRow.watch).in_(names))).rowcount
                s.exec(delete(WatchRow).where(or_(*(col(WatchRow.name) == n for n in names))))
            return int(removed)
