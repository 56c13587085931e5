"""The throwaway PostgreSQL cluster the store's tests run on (tests/pgserver.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.pgserver import PASSWORD, PgServer
from watcher.store import SCHEMA_HEAD, Store

pytestmark = pytest.mark.postgres


def test_each_test_gets_its_own_empty_database(pg_server: PgServer, pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server.dsn(name)) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)


def test_the_server_listens_on_loopback_and_asks_for_the_password(pg_server: PgServer) -> None:
    assert pg_server.url("x").startswith("postgresql://watcher:")
    wrong = pg_server.dsn("postgres").replace(PASSWORD, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(wrong).close()


def test_a_stopped_server_leaves_no_folder() -> None:
    server = PgServer()
    root = server.root
    assert (root / "data" / "postmaster.pid").exists()
    server.stop()
    assert not root.exists()


def test_db_url_is_a_fresh_database_at_the_head_on_each_engine(engine: str, db_url: str) -> None:
    store = Store(db_url, migrate=False)
    try:
        assert store.schema_version() == SCHEMA_HEAD
        assert store.engine.dialect.name == engine
        assert store.memory.watches() == []
    finally:
        store.close()


def test_a_killed_test_process_leaves_no_server_behind(tmp_path: Path) -> None:
    """A test run SIGKILLed with its server up: the watchdog stops the server and removes
    its folder (no finalizer ran)."""
    script = (
        "import sys; from tests.pgserver import PgServer\n"
        "s = PgServer(); print(s.root, s.port, flush=True); sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        root_text, port = child.stdout.readline().split()
        root = Path(root_text)
        assert (root / "data" / "postmaster.pid").exists()
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 60
        while root.exists():
            assert time.monotonic() < deadline, "the cluster was left behind"
            time.sleep(0.05)  # polling for the watchdog's cleanup, with a deadline
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"host=127.0.0.1 port={port} dbname=postgres", connect_timeout=5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
