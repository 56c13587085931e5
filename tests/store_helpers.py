"""Store operations only tests need: the product never does them, so the store's
aggregates don't offer them."""

from __future__ import annotations

from datetime import datetime

from watcher.models import EventKind
from watcher.store import Resume, Store
from watcher.store.tables import CreditRow


def resume(store: Store, watch: str) -> Resume:
    """Where the watch's unfinished change feed goes on (nothing pending by default)."""
    return store.memory.progress(watch)[2]


def episode_open(store: Store, kind: EventKind, subject: str) -> bool:
    return (kind.value, subject) in store.episodes.opened()


def record_credits(store: Store, at: datetime, credits: int, remaining: int | None) -> None:
    """A ledger line outside any watch's poll."""
    with store.db.write() as s:
        s.add(CreditRow(at=at, watch=None, credits=credits, remaining=remaining))
