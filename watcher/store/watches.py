"""A watch's memory: its items as last seen, its progress (baseline, watermark, refresh,
the resume point of an unfinished feed) and its poll bookkeeping.

The memory is written only inside a poll's transaction (:meth:`WatchMemory.save`), with
the rest of what the poll found; everything else here reads it, or drops it when the
watch is forgotten or has left the config for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from watcher.detect import Detection, WatchState
from watcher.planner.steps import Outcome, Resume
from watcher.store.bulk import sqlite_insert, sqlite_item_rows
from watcher.store.database import Database
from watcher.store.tables import ItemRow, WatchRow
from watcher.store.values import PollRecord, WatchInfo, seen_from_row, seen_values

_ITEM_KEEP = frozenset({"watch", "item_id", "first_seen"})
"""Item columns an upsert never overwrites: the key, and when the item was first seen."""
_ITEM_COLUMNS = tuple(ItemRow.model_fields)


class WatchMemory:
    """Each watch's memory and bookkeeping, keyed by the watch's name."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self, watch: str) -> WatchState:
        """The watch's memory, or an empty one for a watch never polled."""
        with self._db.read() as s:
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
                moves=row.moves,
                max_lag=timedelta(seconds=row.max_lag_s) if row.max_lag_s is not None else None,
            )

    def progress(self, watch: str) -> tuple[bool, str | None, Resume]:
        """What the refresh gate needs, from the watch row alone: whether the watch has a
        baseline, the refresh it last processed, and any unfinished feed."""
        with self._db.read() as s:
            row = s.get(WatchRow, watch)
            if row is None:
                return False, None, Resume()
            resume = Resume(row.resume_page, row.resume_offset, row.resume_mark, row.resume_order)
            return row.has_baseline, row.refresh, resume

    def consecutive_failures(self, watch: str) -> int:
        with self._db.read() as s:
            row = s.get(WatchRow, watch)
            return row.consecutive_failures if row else 0

    def watches(self) -> list[WatchInfo]:
        """Every watch the database knows, by name."""
        with self._db.read() as s:
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
                    moves=r.moves,
                )
                for r in rows
            ]

    def forget(self, watch: str) -> None:
        """Drop a watch's memory so its next poll starts with a fresh baseline."""
        with self._db.write() as s:
            s.exec(delete(ItemRow).where(col(ItemRow.watch) == watch))
            s.exec(delete(WatchRow).where(col(WatchRow.name) == watch))

    def mark_removed(self, configured: Iterable[str], now: datetime) -> None:
        """Note when watches left the config; their memory is dropped after a grace period."""
        names = list(configured)
        with self._db.write() as s:
            s.exec(
                update(WatchRow)
                .where(col(WatchRow.name).not_in(names), col(WatchRow.removed_at).is_(None))
                .values(removed_at=now)
            )
            s.exec(update(WatchRow).where(col(WatchRow.name).in_(names)).values(removed_at=None))

    # --- inside a poll's transaction ----------------------------------------------------

    def save(self, s: Session, record: PollRecord) -> None:
        """The poll's bookkeeping and, if it detected, the watch's new progress."""
        row = s.get(WatchRow, record.watch) or WatchRow(name=record.watch)
        row.fingerprint = record.fingerprint or row.fingerprint
        row.last_poll_at = record.started_at
        outcome = Outcome(record.outcome)  # callers may hand the outcome's text
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
            row.resume_order = record.resume.order
            row.moves = state.moves
            lag = state.max_lag
            row.max_lag_s = int(lag.total_seconds()) if lag is not None else None
        s.add(row)
        s.flush()

    def upsert_items(self, s: Session, watch: str, detection: Detection) -> None:
        """Upsert the touched items with one statement executed for many rows."""
        seen = [detection.state.items[i] for i in sorted(detection.touched)]
        if not seen:
            return
        kept = [c for c in _ITEM_COLUMNS if c not in _ITEM_KEEP]
        if self._db.is_sqlite:
            updates = ", ".join(f"{c} = excluded.{c}" for c in kept)
            conflict = f"ON CONFLICT (watch, item_id) DO UPDATE SET {updates}"
            sql = sqlite_insert("item_seen", _ITEM_COLUMNS, conflict)
            s.connection().exec_driver_sql(sql, sqlite_item_rows(watch, seen))
            return
        stmt = self._db.insert(ItemRow)
        stmt = stmt.on_conflict_do_update(
            index_elements=["watch", "item_id"], set_={c: stmt.excluded[c] for c in kept}
        )
        s.connection().execute(stmt, [seen_values(watch, item) for item in seen])
