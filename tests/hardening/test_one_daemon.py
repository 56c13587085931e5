"""Issue 15 item 2: one delivering process per SQLite file. A lock on the database file
that the OS drops when the process dies; `once` beside a running daemon refuses clearly
(a dry run still works), a second daemon refuses, and nothing is written besides the db."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher import dblock

WATCHER = shutil.which("watcher", path=str(Path(sys.executable).parent)) or "watcher"


def config(tmp_path: Path) -> Path:
    path = tmp_path / "watches.yaml"
    path.write_text(
        "version: 1\n"
        'api: {base_url: "http://127.0.0.1:9", api_key: tt_test_key}\n'
        f'state: {{database: "sqlite:///{tmp_path / "data" / "state.db"}"}}\n'
        "notifiers: {hook: {urls: ['json://127.0.0.1:9/']}}\n"
        "watches:\n  - {name: w, handle: acme, every: 1h, notify: [hook]}\n",
        "utf-8",
    )
    return path


def watcher(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "TRENDTRACK_"))}
    return subprocess.run(
        [WATCHER, "-c", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def locked(url: str) -> bool:
    try:
        lock = dblock.acquire(url, purpose="the test")
    except dblock.DatabaseBusy:
        return True
    if lock is not None:
        lock.release()
    return False


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A real `watcher run` on the test's database, holding its lock."""
    path = config(tmp_path)
    process = subprocess.Popen(
        [WATCHER, "-c", str(path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"sqlite:///{tmp_path / 'data' / 'state.db'}"
    wal = tmp_path / "data" / "state.db-wal"
    # Ready once it holds the lock AND its store is open in WAL mode: killed earlier, while
    # SQLite writes a brand-new file's first page, a rollback -journal may be left behind.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and locked(url):
            break
        time.sleep(0.1)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(10)
    if process.stdout:
        process.stdout.close()


def test_once_beside_a_daemon_refuses_and_a_dry_run_still_works(
    tmp_path: Path, daemon: subprocess.Popen[str]
) -> None:
    """`once` exits 1 naming the other process; `once --dry-run` is not refused."""
    assert daemon.poll() is None, "the daemon runs"
    path = tmp_path / "watches.yaml"
    refused = watcher(path, "once")
    assert refused.returncode == 1
    assert "another watcher process" in refused.stderr
    assert "Traceback" not in refused.stderr
    dry = watcher(path, "once", "--dry-run")
    assert "another watcher process" not in dry.stderr


def test_a_second_daemon_refuses_to_start(tmp_path: Path, daemon: subprocess.Popen[str]) -> None:
    """A second `watcher run` on the same file exits 1 with a clear message."""
    second = watcher(tmp_path / "watches.yaml", "run")
    assert second.returncode == 1
    assert "another watcher process" in second.stderr
    assert daemon.poll() is None, "the first daemon keeps running"


def test_the_lock_dies_with_the_daemon_and_no_extra_file_is_written(
    tmp_path: Path, daemon: subprocess.Popen[str]
) -> None:
    """SIGKILL releases the lock (the OS drops it); no lock file: only the db, its -wal/-shm
    and the outbox's send journal (``.sent``, written only when the database fails) exist."""
    url = f"sqlite:///{tmp_path / 'data' / 'state.db'}"
    assert locked(url)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(10)
    assert not locked(url)
    names = {p.name for p in (tmp_path / "data").iterdir()}
    assert names <= {"state.db", "state.db-wal", "state.db-shm", "state.db.sent"}


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_database_deleted_or_replaced_under_the_daemon_stops_it_clearly(
    tmp_path: Path, daemon: subprocess.Popen[str], how: str
) -> None:
    """Issue 15 item 15: the daemon notices within a tick, says so, and exits 1."""
    db = tmp_path / "data" / "state.db"
    assert daemon.poll() is None
    if how == "deleted":
        db.unlink()
    else:
        copy = tmp_path / "data" / "copy.db"
        shutil.copyfile(db, copy)
        os.replace(copy, db)
    assert daemon.wait(60) == 1
    output = daemon.stdout.read() if daemon.stdout else ""
    assert f"was {how} while watcher ran" in output
    assert "Traceback" not in output
