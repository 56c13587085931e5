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
from typing import Any

import pytest

from tests.pgserver import HeadPool, PgServer, PgUnavailable
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
def pg_head(pg_server: PgServer) -> HeadPool:
    """PostgreSQL databases at the schema's head (copies of one migrated template), each
    emptied after its test and reused: ``db_url``'s."""
    name = pg_server.create_database("watcher_head")
    Store(pg_server.url(name)).close()
    return HeadPool(pg_server, name)


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
    pool: HeadPool = request.getfixturevalue("pg_head")
    name = pool.take()
    yield pool.server.url(name)
    pool.give_back(name)


@pytest.fixture
def empty_db_url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state database with no schema yet on ``engine`` (for migration tests)."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'watcher.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def new_db_url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Makes more empty state databases on ``engine``: ``new_db_url()`` -> a fresh URL."""
    made: list[str] = []
    server: PgServer | None = (
        request.getfixturevalue("pg_server") if engine == "postgresql" else None
    )

    def make() -> str:
        if server is None:
            made.append(f"db{len(made) + 1}.db")
            return f"sqlite:///{tmp_path / made[-1]}"
        made.append(server.create_database())
        return server.url(made[-1])

    yield make
    for name in made if server is not None else ():
        server.drop_database(name)


@pytest.fixture
def two_stores(db_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores over one fresh database, as two replicas (or processes) would hold."""
    a, b = Store(db_url), Store(db_url)
    yield a, b
    a.close()
    b.close()
