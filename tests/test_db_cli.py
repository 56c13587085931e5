"""`watcher db upgrade` and the migration lock: migrations run once, whoever starts first."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from tests.pgserver import PASSWORD, PgServer
from watcher.cli import cli
from watcher.store import SCHEMA_HEAD, Store
from watcher.store.database import MIGRATION_LOCK

ROOT = Path(__file__).parent.parent


def write_config(tmp_path: Path, database: str) -> Path:
    path = tmp_path / "watches.yaml"
    path.write_text(
        "\n".join(
            [
                "version: 1",
                "api: {api_key: tt_test}",
                f'state: {{database: "{database}"}}',
                'notifiers: {team: {urls: ["json://127.0.0.1:9/"]}}',
                "watches:",
                "  - {name: acme, handle: acme, notify: [team]}",
            ]
        )
        + "\n",
        "utf-8",
    )
    return path


def cli_run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(path), *args], env={})
    return result.exit_code, result.output


def test_db_upgrade_migrates_a_new_database_once(tmp_path: Path, empty_db_url: str) -> None:
    """The first upgrade creates the schema; the second finds it at the head."""
    path = write_config(tmp_path, empty_db_url)
    code, out = cli_run(path, "db", "upgrade")
    assert code == 0, out
    assert f"upgraded from an empty database to {SCHEMA_HEAD}" in out
    assert PASSWORD not in out
    code, out = cli_run(path, "db", "upgrade")
    assert code == 0, out
    assert f"already at {SCHEMA_HEAD}" in out
    store = Store(empty_db_url, migrate=False)
    assert store.schema_version() == SCHEMA_HEAD
    store.close()


def test_db_upgrade_of_an_unreachable_database_says_why_without_the_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://watcher:{PASSWORD}@127.0.0.1:9/nowhere"
    code, out = cli_run(write_config(tmp_path, url), "db", "upgrade")
    assert code == 1
    assert "cannot open the state database" in out
    assert PASSWORD not in out


def _waiting_for_the_lock(pg_server: PgServer, database: str) -> int:
    with psycopg.connect(pg_server.dsn(database), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = %s",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_two_processes_upgrading_together_migrate_once(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    """Two `watcher db upgrade` started together on one empty PostgreSQL database: both
    wait on the migration lock (held here until both are queued), one migrates, the other
    finds the head; both succeed and the schema has one version row."""
    database = pg_url.rsplit("/", 1)[1]
    path = write_config(tmp_path, pg_url)
    holder = psycopg.connect(pg_server.dsn(database), autocommit=True)
    procs: list[subprocess.Popen[str]] = []
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "watcher", "-c", str(path), "db", "upgrade"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 120
        while _waiting_for_the_lock(pg_server, database) < 2:
            assert all(p.poll() is None for p in procs), "an upgrade ended without the lock"
            assert time.monotonic() < deadline, "the upgrades never queued on the lock"
            time.sleep(0.05)  # polling the server's lock table, with a deadline
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        holder.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted("upgraded" if "upgraded" in out else "already" for out in outputs)
    assert said == ["already", "upgraded"], outputs
    with psycopg.connect(pg_server.dsn(database)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (SCHEMA_HEAD,)
        ]
