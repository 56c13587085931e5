"""Benchmark 3: items diffed and persisted per second by the state store.

One poll that read N items, through watcher's real path: ``detect`` (pure) then
``Store.apply_poll`` (one transaction: watch row, poll row, item upserts, events and
their outbox rows). Two cases:

- ``update``: N known items re-read, their views and rank moved (no event): the diff
  and the upsert of N rows.
- ``new``: N items new since the baseline: N ``new_ad`` events and N outbox rows on top.

The reference is a raw ``sqlite3`` ``executemany`` upsert of the same N item rows into
the same table (same schema, same pragmas), in one transaction. Each case runs a few
times on its own fresh database; the best run counts (least disturbed by the machine).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from watcher.detect import Observation, Rules, Seen, WatchState, detect
from watcher.models import ITEM_KINDS, EventKind, Item, ItemStatus, ItemType
from watcher.store import PollRecord, Store
from watcher.store.values import seen_values

N = 2_000
REPEATS = 2
WATCH = "bench"
T0 = datetime(2026, 4, 1, tzinfo=UTC)
ROUTES = {kind: [("hook", 1)] for kind in EventKind if not kind.is_ops}


def _items(n: int, at: datetime, views: int) -> list[Item]:
    return [
        Item(
            id=f"tiktok_{7_000_000_000_000_000_000 + i}",
            tiktok_id=str(7_000_000_000_000_000_000 + i),
            type=ItemType.AD,
            status=ItemStatus.ACTIVE,
            pinned=False,
            published_at=at - timedelta(hours=6),
            created_at=at,
            updated_at=at,
            indexed_at=at,
            rank=1 + (i * 7919 + views) % n,
            views=views + i,
            handle="brand",
            caption=f"item {i} #protein",
        )
        for i in range(n)
    ]


def _known(items: list[Item]) -> dict[str, Seen]:
    return {
        i.id: Seen(
            item_id=i.id,
            first_seen=T0,
            last_seen=T0,
            tiktok_id=i.tiktok_id,
            type=i.type,
            status=i.status,
            pinned=i.pinned,
            rank=i.rank,
            views=i.views,
            updated_at=i.updated_at,
        )
        for i in items
    }


def _store(folder: Path, name: str) -> Store:
    store = Store(f"sqlite:///{folder / name}")
    store.apply_poll(PollRecord(WATCH, T0, 0, "skipped"), ROUTES)
    return store


def _watcher(folder: Path, case: str, n: int) -> float:
    """Seconds for detect + apply_poll of one poll of ``n`` items."""
    rules = Rules(watch=WATCH, events=ITEM_KINDS)
    at = T0 + timedelta(days=1)
    store = _store(folder, f"{case}.db")
    if case == "update":
        before = _items(n, T0, 1000)
        store.apply_poll(
            PollRecord(
                WATCH,
                T0,
                0,
                "ok",
                detection=detect(
                    rules,
                    WatchState(baseline_at=T0 - timedelta(days=1), has_baseline=True),
                    Observation(at=T0, refresh="d0", tracked=before, watermark=T0),
                ),
            ),
            ROUTES,
        )
        state = store.memory.load(WATCH)
        items = _items(n, T0, 5000)
    else:
        state = WatchState(baseline_at=T0, watermark=T0, refresh="d0", has_baseline=True)
        items = _items(n, at, 1000)
    started = time.perf_counter()
    detection = detect(rules, state, Observation(at=at, refresh="d1", changed=items))
    applied = store.apply_poll(
        PollRecord(WATCH, at, 0, "ok", credits=n, detection=detection), ROUTES
    )
    elapsed = time.perf_counter() - started
    expected_events = n if case == "new" else 0
    assert len(applied.new_events) == expected_events, len(applied.new_events)
    assert len(detection.touched) == n
    store.close()
    return elapsed


def _raw(folder: Path, name: str, n: int) -> float:
    """Seconds for a raw executemany upsert of the same ``n`` rows, one transaction."""
    _store(folder, name).close()
    at = T0 + timedelta(days=1)
    items = _items(n, at, 5000)
    seen = _known(items)
    rows = []
    for item in items:
        values = seen_values(WATCH, seen[item.id])
        rows.append(
            tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in values.values())
        )
    columns = list(seen_values(WATCH, next(iter(seen.values()))))
    updates = ", ".join(
        f"{c} = excluded.{c}" for c in columns if c not in {"watch", "item_id", "first_seen"}
    )
    # Column names come from our own schema; the values are bound.
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    sql = f"INSERT INTO item_seen ({names}) VALUES ({marks}) ON CONFLICT (watch, item_id) DO UPDATE SET {updates}"  # noqa: E501, S608
    connection = sqlite3.connect(folder / name, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        connection.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    connection.execute("BEGIN")
    connection.executemany(sql, rows)
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    count = connection.execute("SELECT count(*) FROM item_seen").fetchone()[0]
    connection.close()
    assert count == n, count
    return elapsed


def run(n: int = N, repeats: int = REPEATS) -> dict[str, object]:
    results: dict[str, object] = {"items": n, "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as name:
        folder = Path(name)
        raw = min(_raw(folder, f"raw{r}.db", n) for r in range(repeats))
        results["raw_items_per_second"] = round(n / raw)
        for case in ("update", "new"):
            best = min(_watcher(_sub(folder, f"{case}{r}"), case, n) for r in range(repeats))
            results[case] = {
                "items_per_second": round(n / best),
                "ratio_to_raw": round(raw / best, 3),
            }
    return results


def _sub(folder: Path, name: str) -> Path:
    path = folder / name
    path.mkdir()
    return path
