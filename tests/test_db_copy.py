"""`watcher db copy --to URL`: the whole state, row for row, between SQLite and PostgreSQL.

A state with a row in every table (events in every delivery state, silences, digest marks,
episodes, ledger, meta, a watch's memory and resume point) is copied SQLite -> PostgreSQL
-> SQLite, and each copy reads back equal, table by table and column by column. A copy is
refused (exit 1, the reason said) into a database that holds state, or while a daemon
uses either side.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from tests.pgserver import PASSWORD, PgServer
from tests.store_helpers import record_credits
from tests.test_db_cli import cli_run, write_config
from watcher import dblock
from watcher.detect import Detection, Seen, WatchState, event_key
from watcher.models import Event, EventKind, Item, ItemStatus, ItemType, ops_event
from watcher.planner.steps import Resume
from watcher.store import PollRecord, Store
from watcher.store.control import Control
from watcher.store.copy import CopyRefused, copy_state
from watcher.store.leases import Leases

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ROUTES = {
    EventKind.NEW_AD: [("team", 2), ("ops", 1)],
    EventKind.WATCH_FAILING: [("ops", 1)],
    EventKind.SILENCE_ENDED: [("team", 2)],
}


FILLED = (
    "watch",
    "item_seen",
    "poll",
    "event",
    "delivery",
    "credit_ledger",
    "ops_episode",
    "meta",
    "silence",
    "digest_mark",
    "digest_part",
    "lease",
)
"""Tables ``fill`` puts rows in; tables added later are copied (and compared) all the same."""


def _event(watch: str, n: int, at: datetime) -> Event:
    item = Item(
        id=f"itm_{watch}_{n}",
        tiktok_id=str(7_100_000_000_000_000_000 + n),
        type=ItemType.AD,
        status=ItemStatus.ACTIVE,
        handle=watch,
        caption=f"drop {n} — ünïcode ✓",
        views=10_000 + n,
    )
    return Event(
        event_key(watch, EventKind.NEW_AD, item.id, "c"),
        EventKind.NEW_AD,
        watch,
        at,
        item,
        {"views": item.views},
    )


def fill(url: str) -> None:
    """A row in every table; deliveries sent, pending (backing off), dead, held, silenced."""
    store = Store(url)
    control = Control(store)
    try:
        for n, watch in enumerate(("acme", "rival")):
            at = T0 + timedelta(minutes=n)
            seen = {
                f"itm_{watch}_{i}": Seen(f"itm_{watch}_{i}", at, at, updated_at=at, rank=i)
                for i in range(3)
            }
            state = WatchState(T0, at, "2026-04-01", True, True, seen)
            events = tuple(_event(watch, i, at) for i in range(3))
            record = PollRecord(
                watch,
                at,
                120,
                "ok",
                credits=7,
                remaining=9_000 - n,
                detection=Detection(state, events, frozenset(seen)),
                resume=Resume(2, 40, at) if watch == "rival" else Resume(),
            )
            store.apply_poll(record, ROUTES)
        store.apply_poll(
            PollRecord.failed("acme", T0 + timedelta(hours=1), RuntimeError("boom")), ROUTES
        )
        record_credits(store, T0, 3, 8_990)
        store.episodes.open(EventKind.WATCH_FAILING, "acme", T0)
        failing = ops_event(EventKind.WATCH_FAILING, "acme", T0, {"error": "boom"})
        assert store.outbox.record(failing, ROUTES)  # an event without an item (SQL NULL)
        store.meta.set("capabilities", '{"chosen": true}')
        rows = {
            (d.event.key, d.notifier, d.url_index): d
            for d in store.outbox.due(T0 + timedelta(days=1))
        }
        by_state: dict[str, list[int]] = {"sent": [], "failed": [], "dead": [], "held": []}
        silenced: dict[int, int] = {}
        silence = control.add_silence(T0, T0 + timedelta(days=7), watch="rival", reason="launch")
        for (_key, notifier, index), d in sorted(rows.items()):
            if d.event.watch == "rival":
                silenced[d.id] = silence
            elif notifier == "ops":
                by_state["dead"].append(d.id)
            elif index == 0:
                by_state["sent"].append(d.id)
            elif d.event.item is not None and d.event.item.id.endswith("_0"):
                by_state["held"].append(d.id)
            else:
                by_state["failed"].append(d.id)
        store.outbox.mark_sent(by_state["sent"], T0 + timedelta(seconds=5))
        store.outbox.mark_failed(
            by_state["failed"], "HTTP 500", T0 + timedelta(minutes=5), dead=False
        )
        store.outbox.mark_failed(by_state["dead"], "HTTP 404", T0 + timedelta(minutes=5), dead=True)
        control.hold(by_state["held"])
        control.silence(silenced)
        control.set_digest_mark("team", "0 9 * * *", T0)
        for part, fingerprint in enumerate(("part-1", "part-2")):  # a digest cut off mid-way
            store.outbox.part_sent("team", 1, by_state["failed"], part, fingerprint)
        ended = control.add_silence(T0, T0 + timedelta(hours=1), kinds=["pinned"])
        control.expire_silence(ended, T0 + timedelta(minutes=30))
        # A stopped replica's lease, expired long ago (a live one refuses the copy).
        Leases(store, "host-1", timedelta(microseconds=1)).take(["watch:acme"])
    finally:
        store.close()


def dump(url: str) -> dict[str, list[dict[str, object]]]:
    """Every table's rows as the store reads them, in primary-key order."""
    store = Store(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            return {
                table.name: [
                    dict(row._mapping)
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in SQLModel.metadata.sorted_tables
            }
    finally:
        store.close()


def null_items(url: str) -> int:
    """Events whose item is SQL NULL (not JSON ``null``): the copy keeps NULL as NULL."""
    store = Store(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            query = text("SELECT count(*) FROM event WHERE item IS NULL")
            return int(conn.execute(query).scalar_one())
    finally:
        store.close()


def delivery_states(url: str) -> dict[str, int]:
    store = Store(url, migrate=False)
    try:
        return Control(store).delivery_states()
    finally:
        store.close()


@pytest.mark.postgres
def test_a_copy_to_postgresql_and_back_reads_back_equal_in_every_table(
    tmp_path: Path, pg_url: str
) -> None:
    source = f"sqlite:///{tmp_path / 'watcher.db'}"
    fill(source)
    original = dump(source)
    assert all(original[t] for t in FILLED), "the fixture fills every table it knows"
    assert {s for s, n in delivery_states(source).items() if n} == {
        "sent",
        "pending",
        "dead",
        "held",
        "silenced",
    }
    code, out = cli_run(write_config(tmp_path, source), "db", "copy", "--to", pg_url)
    assert code == 0, out
    assert PASSWORD not in out
    assert f"event: {len(original['event'])} rows" in out
    assert dump(pg_url) == original
    assert null_items(pg_url) == null_items(source) > 0

    back = f"sqlite:///{tmp_path / 'back.db'}"
    code, out = cli_run(write_config(tmp_path, pg_url), "db", "copy", "--to", back)
    assert code == 0, out
    assert dump(back) == original
    assert null_items(back) == null_items(source)


@pytest.mark.postgres
def test_new_rows_on_a_postgresql_copy_get_fresh_ids(tmp_path: Path, pg_url: str) -> None:
    """The id sequences follow the copied ids: the next event and silence don't collide."""
    source = f"sqlite:///{tmp_path / 'watcher.db'}"
    fill(source)
    assert cli_run(write_config(tmp_path, source), "db", "copy", "--to", pg_url)[0] == 0
    store = Store(pg_url)
    try:
        before = max(v.id for v in store.outbox.events())
        assert store.outbox.record(_event("acme", 99, T0 + timedelta(days=1)), ROUTES)
        assert max(v.id for v in store.outbox.events()) == before + 1
        Control(store).add_silence(T0, T0 + timedelta(days=1), watch="acme")
    finally:
        store.close()


def test_a_copy_into_a_database_with_state_is_refused(
    tmp_path: Path, new_db_url: Callable[[], str]
) -> None:
    source, target = new_db_url(), new_db_url()
    fill(source)
    fill(target)
    before = dump(target)
    code, out = cli_run(write_config(tmp_path, source), "db", "copy", "--to", target)
    assert code == 1
    assert "already holds watcher state" in out
    assert "copy only into an empty database" in out
    assert dump(target) == before


def test_a_copy_onto_itself_is_refused(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'watcher.db'}"
    fill(source)
    code, out = cli_run(
        write_config(tmp_path, source), "db", "copy", "--to", str(tmp_path / "watcher.db")
    )
    assert code == 1
    assert "is the configured database itself" in out


def test_a_copy_while_a_daemon_runs_on_sqlite_is_refused(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'watcher.db'}"
    fill(source)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    for busy in (source, target):
        lock = dblock.acquire(busy, purpose="the test's daemon")
        assert lock is not None
        try:
            code, out = cli_run(write_config(tmp_path, source), "db", "copy", "--to", target)
        finally:
            lock.release()
        assert code == 1
        assert "a watcher daemon (or `watcher once`) is using the" in out
    store = Store(target, migrate=False)
    assert store.schema_version() is None, "a refused copy writes nothing"
    store.close()


@pytest.mark.postgres
def test_a_copy_while_another_watcher_uses_postgresql_is_refused(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    """A connection another watcher process opened (it names itself watcher/PID) blocks
    the copy, on either side."""
    source = f"sqlite:///{tmp_path / 'watcher.db'}"
    fill(source)
    database = pg_url.rsplit("/", 1)[1]
    other = psycopg.connect(pg_server.dsn(database), application_name="watcher/999999")
    try:
        code, out = cli_run(write_config(tmp_path, source), "db", "copy", "--to", pg_url)
    finally:
        other.close()
    assert code == 1
    assert "in use by another watcher process (watcher/999999 from 127.0.0.1)" in out
    assert PASSWORD not in out
    assert dump(pg_url)["event"] == [], "a refused copy writes nothing"


def test_copy_state_refuses_a_source_behind_the_head(tmp_path: Path) -> None:
    old = Store(f"sqlite:///{tmp_path / 'old.db'}", migrate=False)
    new = Store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with pytest.raises(CopyRefused, match="run `watcher db upgrade`"):
            copy_state(old, new)
    finally:
        old.close()
        new.close()


@pytest.mark.postgres
def test_a_copy_from_postgresql_with_a_live_lease_is_refused(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    """A replica at work holds leases that have not expired: its database is not copied."""
    fill(pg_url)
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server.dsn(database), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO lease (name, holder, acquired_at, expires_at)"
            " VALUES ('replica:a', 'a', now(), now() + interval '1 hour')"
        )
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    code, out = cli_run(write_config(tmp_path, pg_url), "db", "copy", "--to", target)
    assert code == 1
    assert "has 1 live leases: a replica is running on it" in out
