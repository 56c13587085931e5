"""A throwaway PostgreSQL cluster for the tests: a real server, never a mock.

``initdb`` makes a cluster in a temporary folder, ``pg_ctl`` starts it on a free loopback
port with its unix socket in that folder, and ``stop`` removes it all. PostgreSQL refuses
to run as root, so under root (CI, the dev container) the binaries run as the ``postgres``
system user through ``runuser``, and the folder belongs to that user. Clients connect over
TCP to 127.0.0.1 with a password (scram-sha-256), so the URLs the tests hand to watcher
carry a password, as a real deployment's would; the socket trusts the cluster's owner.

The cluster is tuned for tests (fsync and synchronous commit off): it is thrown away, and
each test gets its own database (``CREATE DATABASE`` takes milliseconds).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

USER = "watcher"
PASSWORD = "pg-s3cret-test"  # a fake secret: the tests check it never shows
_VERSION_DIR = re.compile(r"^\d+$")
_names = itertools.count(1)


_WATCHDOG = """
import shutil, subprocess, sys
root, pg_ctl, *prefix = sys.argv[1:]
sys.stdin.buffer.read()  # until the test process closes the pipe, or dies
subprocess.run([*prefix, pg_ctl, "-D", root + "/data", "-m", "immediate", "-w", "stop"],
               capture_output=True, timeout=60, check=False)
shutil.rmtree(root, ignore_errors=True)
"""
"""Stops the server and removes its folder once the test process is gone, however it
ended (a SIGKILLed pytest runs no finalizer): it waits for the end of a pipe only the
test process holds."""


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """The newest Debian PostgreSQL server's bin folder (or ``$WATCHER_PG_BINDIR``)."""
    explicit = os.environ.get("WATCHER_PG_BINDIR")
    if explicit:
        return Path(explicit)
    root = Path("/usr/lib/postgresql")
    versions = (
        sorted(
            (p for p in root.iterdir() if _VERSION_DIR.match(p.name)),
            key=lambda p: int(p.name),
            reverse=True,
        )
        if root.is_dir()
        else []
    )
    for version in versions:
        if (version / "bin" / "initdb").is_file():
            return version / "bin"
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PgUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl): install Debian's `postgresql`"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One running cluster; ``url(name)`` for a database in it, ``stop()`` removes it."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self._as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="watcher-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._started = False
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.root), str(self.bindir / "pg_ctl"), *prefix],
            stdin=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C of the test run doesn't stop it first
        )
        try:
            self._init()
            self._start()
        except BaseException:
            self.stop()
            raise

    # --- lifecycle ------------------------------------------------------------------------

    def _run(self, args: Sequence[str], *, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}"
            )

    def _init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        self._run(
            [
                "initdb",
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        pwfile.unlink()

    def _start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c timezone=UTC",
            ]
        )
        last: Exception | None = None
        for _ in range(5):  # a port picked free may be taken before the server binds it
            self.port = free_port()
            try:
                self._run(
                    [
                        "pg_ctl",
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.root / "server.log"),
                        "-o",
                        f"{options} -p {self.port}",
                        "-w",  # pg_ctl polls the server until it accepts connections
                        "-t",
                        "60",
                        "start",
                    ],
                    timeout=90,
                )
            except RuntimeError as exc:
                last = exc
                self._stop_server()
                continue
            self._started = True
            self._wait_ready(deadline=time.monotonic() + 30)
            return
        raise RuntimeError(f"the PostgreSQL test server did not start: {last}; {self.log()}")

    def _wait_ready(self, deadline: float) -> None:
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=5):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # a poll interval with a deadline, not a wait for time

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _stop_server(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its folder."""
        self._stop_server()
        self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watchdog.stdin is not None:
            self._watchdog.stdin.close()  # nothing left for it to do: it ends
        self._watchdog.wait(timeout=60)

    # --- databases ------------------------------------------------------------------------

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} password={PASSWORD} dbname={database}"

    def url(self, database: str, *, driver: str = "postgresql") -> str:
        """A URL for watcher (``postgresql://`` with the password, as a user writes it)."""
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: sql.Composable) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """A new database (a copy of ``template``, if given); its name."""
        name = name or f"t{os.getpid()}_{next(_names)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self.admin(statement)
        return name

    def drop_database(self, name: str) -> None:
        self.admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def running() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


class HeadPool:
    """Databases at the schema's head, reused across tests: a test's database is emptied
    afterwards (``TRUNCATE``, identities restarted) and handed to the next test, which is
    ten times faster than ``CREATE DATABASE`` per test. A database whose schema a test
    changed (a table dropped, the version row moved) is dropped instead."""

    def __init__(self, server: PgServer, template: str) -> None:
        self.server = server
        self.template = template
        self.tables = self._tables(template)
        self._free: list[str] = []

    def _tables(self, name: str) -> frozenset[tuple[str, str | None]]:
        """Every table with its version row (the alembic table's), as the schema's mark."""
        with psycopg.connect(self.server.dsn(name), autocommit=True) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            ]
            version = conn.execute("SELECT string_agg(version_num, ',') FROM alembic_version")
            row = version.fetchone()
        return frozenset(
            {*((n, None) for n in names), ("alembic_version", row[0] if row else None)}
        )

    def take(self) -> str:
        if self._free:
            return self._free.pop()
        return self.server.create_database(template=self.template)

    def give_back(self, name: str) -> None:
        try:
            reset = self._reset(name)
        except psycopg.Error:
            reset = False
        if reset:
            self._free.append(name)
        else:
            self.server.drop_database(name)

    def _reset(self, name: str) -> bool:
        if self._tables(name) != self.tables:
            return False
        with psycopg.connect(self.server.dsn(name), autocommit=True) as conn:
            conn.execute("SET lock_timeout = '5s'")
            conn.execute(  # connections a test left open (a store never closed)
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            tables = [n for n, _ in self.tables if n != "alembic_version"]
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in sorted(tables))
                )
            )
        return True
