"""Issue 15 item 1: a database write failing after a successful send (a full 600 KB tmpfs;
another process holding ``BEGIN EXCLUSIVE``) must not become a resend loop: the pass backs
off, the send is remembered where a restarted worker sees it (``state.db.sent``), ops are
told once, and once the database works the row is marked sent without being sent again."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.test_config_hostile import until
from tests.receivers import HttpReceiver
from tests.test_outbox import item_event, make_settings, record_poll, text_of
from watcher.config import Settings
from watcher.errors import StoreError
from watcher.outbox import Outbox
from watcher.sent_journal import SLOT, SentJournal, Unrecorded
from watcher.store import Store


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 600 KB tmpfs (skipped where mounting is not permitted)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path) -> Path:
    """Fill the disk to the last byte."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 4096)
            out.flush()
    with contextlib.suppress(OSError), filler.open("ab") as out:
        while True:
            out.write(b"\0")
            out.flush()
    return filler


def states(store: Store) -> list[str]:
    return [
        d.state for v in store.outbox.events() for d in v.deliveries if d.notifier == "marketing"
    ]


def unrecorded_alerts(ops: HttpReceiver) -> list[str]:
    return [t for t in map(text_of, ops.requests) if "not recorded" in t]


async def stop_worker(stop: asyncio.Event, worker: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(worker, 60)


def settings_for(tmp_path: Path, rx: HttpReceiver, ops: HttpReceiver) -> Settings:
    return make_settings(tmp_path, {"marketing": [rx.url], "ops": [ops.url]})


@pytest.mark.timeout(180)
async def test_disk_full_after_a_send_never_resends_even_across_a_restart(
    tmp_path: Path, small_disk: Path
) -> None:
    """Disk full after the send: one message in 3 s of passes and ONE ops alert; the worker
    restarts once space is back: the row is marked sent, not sent again."""
    with HttpReceiver.json() as rx, HttpReceiver.json() as ops:
        settings = settings_for(tmp_path, rx, ops)
        url = f"sqlite:///{small_disk / 'w.db'}"
        store = Store(url)
        record_poll(store, settings, "acme", [item_event("acme", 1)])
        outbox = Outbox(settings, store)  # takes the journal's space while there is some
        assert (small_disk / "w.db.sent").stat().st_size == 2 * SLOT
        filler = fill(small_disk)
        stop = asyncio.Event()
        worker = asyncio.create_task(outbox.run(stop, interval=0.05))
        try:
            await asyncio.to_thread(rx.wait_for, 1)
            await asyncio.sleep(3)  # a window of retried passes, to see none resend
            assert len(rx.requests) == 1, "the failed mark did not turn into resends"
            assert states(store) == ["pending"]
            assert len(unrecorded_alerts(ops)) == 1, "ops were told once"
        finally:
            await stop_worker(stop, worker)
            store.close()  # the worker's memory dies with it: a restart
        filler.unlink()
        store = Store(url)
        try:
            report = await Outbox(settings, store).flush()
            assert report.sent == 1
            assert states(store) == ["sent"]
            assert len(rx.requests) == 1, "marked sent without sending again"
            assert len(unrecorded_alerts(ops)) == 1
        finally:
            store.close()
    assert SentJournal(small_disk / "w.db.sent").open() == Unrecorded()


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@pytest.mark.timeout(180)
async def test_a_database_locked_by_another_process_after_a_send_never_resends(
    tmp_path: Path,
) -> None:
    """The send is held at the receiver until a second process holds BEGIN EXCLUSIVE on
    the database, so the mark fails (after the 10 s busy timeout): no resend, one ops
    alert; restarted after the lock ends, the worker marks the row instead of sending."""
    with HttpReceiver.json() as rx, HttpReceiver.json() as ops:
        settings = settings_for(tmp_path, rx, ops)
        db = tmp_path / "state.db"
        store = Store(f"sqlite:///{db}")
        record_poll(store, settings, "acme", [item_event("acme", 1)])
        outbox = Outbox(settings, store)
        rx.hold()
        stop = asyncio.Event()
        worker = asyncio.create_task(outbox.run(stop, interval=0.05))
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            HOLDER,
            str(db),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.to_thread(rx.wait_for, 1)  # the send is in flight, held
            assert holder.stdout is not None
            assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"locked\n"
            rx.release()  # the notifier takes it; the mark then meets the lock
            await until(lambda: len(unrecorded_alerts(ops)) >= 1, 60)
            assert len(unrecorded_alerts(ops)) == 1
            assert "database is locked" in unrecorded_alerts(ops)[0]
            await asyncio.sleep(2)  # a window of retried passes, to see none resend
            assert len(rx.requests) == 1
        finally:
            await stop_worker(stop, worker)
            store.close()
            await asyncio.wait_for(holder.communicate(b"\n"), 30)  # it ends its transaction
        store = Store(f"sqlite:///{db}")
        try:
            await Outbox(settings, store).flush()
            assert states(store) == ["sent"]
            assert len(rx.requests) == 1, "marked sent without sending again"
            assert len(unrecorded_alerts(ops)) == 1, "ops were told once"
        finally:
            store.close()


def test_the_journal_survives_a_torn_write_and_stays_out_of_the_way(tmp_path: Path) -> None:
    """A slot torn by a crash leaves the other readable; garbage reads as empty; more than a
    slot holds, or no database file (PostgreSQL), is memory only."""
    path = tmp_path / "state.db.sent"
    journal = SentJournal(path)
    assert journal.open() == Unrecorded()
    first = Unrecorded({(1, 2): ["aa"]}, {}, told=True)
    assert journal.save(first)
    assert journal.save(Unrecorded({(1, 2): ["aa"], (3,): ["bb"]}, {(4,): ["cc"]}, told=True))
    with path.open("r+b") as raw:  # tear the newer slot (the second write went to slot 0)
        raw.write(b'{"generation": 2, "whole": [[[1')
    assert SentJournal(path).open() == first
    path.write_bytes(b"\xff" * (2 * SLOT))
    assert SentJournal(path).open() == Unrecorded()
    huge = Unrecorded({(n,): ["f" * 16] for n in range(5000)})
    assert not journal.save(huge)
    postgres = SentJournal.beside("postgresql://u@h/db")
    assert postgres.path is None
    assert postgres.open() == Unrecorded()
    assert not postgres.save(first)


async def test_a_digest_part_whose_note_failed_is_not_sent_again_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part 1 of a long digest goes out and its note fails: a restarted worker resumes at
    part 2 from the journal; ops hear of it once."""
    with HttpReceiver.json() as rx, HttpReceiver.json() as ops:
        settings = make_settings(
            tmp_path,
            {"marketing": [rx.url], "ops": [ops.url]},
            extra="delivery: {digest_threshold: 50}",
        )
        events = [item_event("acme", n, caption=f"caption {n} " + "word " * 95) for n in range(30)]
        store = Store(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            record_poll(store, settings, "acme", events)
            outbox = Outbox(settings, store)
            parts = outbox.messages_for(rx.url, events)
            assert len(parts) >= 3

            def full(*_args: object) -> None:
                raise StoreError("state database write failed: the disk is full")

            with monkeypatch.context() as patch:
                patch.setattr(store.outbox, "part_sent", full)
                with pytest.raises(StoreError):
                    await outbox.flush()
            assert len(rx.requests) == 1
            assert len(unrecorded_alerts(ops)) == 1
            report = await Outbox(settings, store).flush()  # a new worker: memory gone
            assert report.sent == 30
            assert [text_of(r) for r in rx.requests] == [f"{p.title}\n{p.body}" for p in parts]
            assert len(unrecorded_alerts(ops)) == 1
        finally:
            store.close()
