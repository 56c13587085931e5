"""State database URLs: the driver behind each, and the password never shown."""

from __future__ import annotations

import pytest

from watcher.store.urls import engine_url, is_postgres, password, shown

PG = "postgresql://alice:s3cret-pw@db.example:5432/watcher"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (PG, "postgresql+psycopg://alice:s3cret-pw@db.example:5432/watcher"),
        ("postgres://a:b@h/d", "postgresql+psycopg://a:b@h/d"),
        ("postgresql+psycopg://a@h/d", "postgresql+psycopg://a@h/d"),
        ("sqlite:///watcher.db", "sqlite:///watcher.db"),
    ],
)
def test_postgresql_urls_go_through_psycopg_3(url: str, expected: str) -> None:
    assert engine_url(url) == expected


def test_which_urls_are_postgresql() -> None:
    assert is_postgres(PG)
    assert is_postgres("postgres://h/d")
    assert is_postgres("postgresql+psycopg://h/d")
    assert not is_postgres("sqlite:///x.db")


def test_the_password_is_found_and_never_shown() -> None:
    assert password(PG) == "s3cret-pw"
    assert password("sqlite:///x.db") is None
    assert "s3cret-pw" not in shown(PG)
    assert shown(PG) == "postgresql+psycopg://alice:***@db.example:5432/watcher"
    assert shown("::not a url") == "<unparsable database URL>"
