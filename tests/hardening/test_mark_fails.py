"""Issue 15 item 1: a database write failing after a successful send (a full 600 KB tmpfs)
must not become a resend loop: the pass backs off, the send is remembered, and once space
is back the row is marked sent without being sent again."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hardening.test_config_hostile import until
from tests.receivers import HttpReceiver
from tests.test_outbox import item_event, make_settings, record_poll
from watcher.outbox import Outbox
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


async def test_a_failed_mark_after_a_send_never_resends(tmp_path: Path, small_disk: Path) -> None:
    """Disk full after the send: one message in 3 s of passes; freed: marked, not resent."""
    with HttpReceiver.json() as rx:
        settings = make_settings(tmp_path, {"marketing": [rx.url]})
        store = Store(f"sqlite:///{small_disk / 'w.db'}")
        try:
            record_poll(store, settings, "acme", [item_event("acme", 1)])
            outbox = Outbox(settings, store)
            filler = fill(small_disk)
            stop = asyncio.Event()
            worker = asyncio.create_task(outbox.run(stop, interval=0.05))
            await asyncio.to_thread(rx.wait_for, 1)
            await asyncio.sleep(3)
            assert len(rx.requests) == 1, "the failed mark did not turn into resends"
            assert any(d.state == "pending" for v in store.outbox.events() for d in v.deliveries)
            filler.unlink()
            await until(
                lambda: all(d.state == "sent" for v in store.outbox.events() for d in v.deliveries),
                90,
            )
            stop.set()
            await asyncio.wait_for(worker, 30)
            assert all(d.state == "sent" for v in store.outbox.events() for d in v.deliveries)
            assert len(rx.requests) == 1, "marked sent without sending again"
        finally:
            store.close()
