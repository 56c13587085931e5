"""Shared fixtures; feature fixtures live in each test package's own conftest.py.

The state database on both engines: ``pg_server`` is one throwaway PostgreSQL cluster for
the session (started by the first test that needs it, removed at the end even on failure);
``pg_url`` is a fresh empty database in it per test; ``db_url`` is a fresh database at the
schema's head, once on SQLite and once on PostgreSQL (tests that take it run on both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PgServer, PgUnavailable
from watcher.store import Store

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL cluster. Without server binaries the PostgreSQL tests are
    skipped on a developer's machine and fail in CI (where `.ci/run` installs them)."""
    try:
        server = PgServer()
    except PgUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no schema), dropped after the test."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
def pg_head(pg_server: PgServer) -> str:
    """A PostgreSQL database migrated to the head, the template of ``db_url``'s."""
    name = pg_server.create_database("watcher_head")
    Store(pg_server.url(name)).close()
    return name


@pytest.fixture(scope="session")
def sqlite_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the head, copied for each test (migrating takes time)."""
    path = tmp_path_factory.mktemp("sqlite-head") / "watcher.db"
    Store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a test runs on: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture
def db_url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh state database at the schema's head on ``engine``."""
    if engine == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_head"), tmp_path / "watcher.db")
        yield f"sqlite:///{tmp_path / 'watcher.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create_database(template=request.getfixturevalue("pg_head"))
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def empty_db_url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state database with no schema yet on ``engine`` (for migration tests)."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'watcher.db'}"
    return str(request.getfixturevalue("pg_url"))
