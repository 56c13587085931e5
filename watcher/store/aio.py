"""The store for async code: every call runs in a worker thread, never on the event loop.

The daemon, the poller, the outbox and the delivery gate share one :class:`AsyncStore`
over the (blocking, thread-safe) :class:`Store`; its aggregates mirror the store's, so
``await store.memory.load(name)`` reads as ``store.memory.load(name)`` does in the CLI.
This module is the only place the store crosses into threads: callers never use
``asyncio.to_thread`` for it, and a blocking store call on the loop stalls every watch.

Calls share the loop's default thread pool, except :meth:`AsyncStore.run_apart`: a thread
of its own for the lease steps of :mod:`watcher.replicas`, which must run on time however
many polls' store calls are queued in the pool (a late renewal loses the leases).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

from watcher.delivery_rules import Silence
from watcher.detect import WatchState
from watcher.models import Event, EventKind
from watcher.planner.steps import Resume
from watcher.store.control import Control, HeldRow
from watcher.store.episodes import Episodes
from watcher.store.ledger import Ledger
from watcher.store.meta import Meta
from watcher.store.queue import OutboxQueue
from watcher.store.state import Store
from watcher.store.values import Applied, DueDelivery, EventView, PollRecord, Routes, WatchInfo
from watcher.store.watches import WatchMemory

P = ParamSpec("P")
T = TypeVar("T")


async def _off_loop(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await asyncio.to_thread(call, *args, **kwargs)


class AsyncMemory:
    """:class:`WatchMemory`, awaited."""

    def __init__(self, memory: WatchMemory) -> None:
        self._sync = memory

    async def load(self, watch: str) -> WatchState:
        return await _off_loop(self._sync.load, watch)

    async def progress(self, watch: str) -> tuple[bool, str | None, Resume]:
        return await _off_loop(self._sync.progress, watch)

    async def consecutive_failures(self, watch: str) -> int:
        return await _off_loop(self._sync.consecutive_failures, watch)

    async def watches(self) -> list[WatchInfo]:
        return await _off_loop(self._sync.watches)

    async def forget(self, watch: str) -> None:
        await _off_loop(self._sync.forget, watch)

    async def mark_removed(self, configured: Iterable[str], now: datetime) -> None:
        await _off_loop(self._sync.mark_removed, list(configured), now)


class AsyncOutbox:
    """:class:`OutboxQueue`, awaited."""

    def __init__(self, queue: OutboxQueue) -> None:
        self._sync = queue

    async def record(self, ev: Event, routes: Routes) -> bool:
        return await _off_loop(self._sync.record, ev, routes)

    async def due(self, now: datetime, limit: int = 500) -> list[DueDelivery]:
        return await _off_loop(self._sync.due, now, limit)

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        await _off_loop(self._sync.mark_sent, ids, now)

    async def mark_failed(
        self, ids: Sequence[int], error: str, next_attempt_at: datetime, *, dead: bool
    ) -> None:
        await _off_loop(self._sync.mark_failed, ids, error, next_attempt_at, dead=dead)

    async def parts_sent(self, notifier: str, url_index: int, ids: Sequence[int]) -> list[str]:
        return await _off_loop(self._sync.parts_sent, notifier, url_index, ids)

    async def part_sent(
        self, notifier: str, url_index: int, ids: Sequence[int], number: int, fingerprint: str
    ) -> None:
        await _off_loop(self._sync.part_sent, notifier, url_index, ids, number, fingerprint)

    async def clear_parts(self, notifier: str, url_index: int) -> None:
        await _off_loop(self._sync.clear_parts, notifier, url_index)

    async def depth(self) -> int:
        return await _off_loop(self._sync.depth)

    async def events(
        self, *, since: datetime | None = None, watch: str | None = None, limit: int = 1000
    ) -> list[EventView]:
        return await _off_loop(self._sync.events, since=since, watch=watch, limit=limit)


class AsyncEpisodes:
    """:class:`Episodes`, awaited."""

    def __init__(self, episodes: Episodes) -> None:
        self._sync = episodes

    async def open(self, kind: EventKind, subject: str, now: datetime) -> bool:
        return await _off_loop(self._sync.open, kind, subject, now)

    async def close(self, kind: EventKind, subject: str) -> bool:
        return await _off_loop(self._sync.close, kind, subject)

    async def opened(self) -> set[tuple[str, str]]:
        return await _off_loop(self._sync.opened)


class AsyncLedger:
    """:class:`Ledger`, awaited."""

    def __init__(self, ledger: Ledger) -> None:
        self._sync = ledger

    async def spent(
        self, *, since: datetime, until: datetime | None = None, watch: str | None = None
    ) -> int:
        return await _off_loop(self._sync.spent, since=since, until=until, watch=watch)


class AsyncMeta:
    """:class:`Meta`, awaited."""

    def __init__(self, meta: Meta) -> None:
        self._sync = meta

    async def get(self, key: str) -> str | None:
        return await _off_loop(self._sync.get, key)

    async def set(self, key: str, value: str) -> None:
        await _off_loop(self._sync.set, key, value)

    async def delete(self, key: str) -> None:
        await _off_loop(self._sync.delete, key)


class AsyncControl:
    """:class:`Control` (silences, holds, digest marks), awaited."""

    def __init__(self, control: Control) -> None:
        self._sync = control

    async def open_silences(self) -> list[Silence]:
        return await _off_loop(self._sync.open_silences)

    async def silence(self, ids: Mapping[int, int]) -> None:
        await _off_loop(self._sync.silence, ids)

    async def summarize(self, silence: Silence, now: datetime, routes: Routes) -> Event | None:
        return await _off_loop(self._sync.summarize, silence, now, routes)

    async def hold(self, ids: Sequence[int]) -> None:
        await _off_loop(self._sync.hold, ids)

    async def held(self, notifier: str, *, queued: bool = False) -> list[HeldRow]:
        return await _off_loop(self._sync.held, notifier, queued=queued)

    async def held_notifiers(self) -> set[str]:
        return await _off_loop(self._sync.held_notifiers)

    async def release(
        self,
        notifier: str,
        key: str,
        ids: Sequence[int],
        now: datetime,
        *,
        silenced: Mapping[int, int] | None = None,
        mark: tuple[str, datetime] | None = None,
    ) -> None:
        await _off_loop(self._sync.release, notifier, key, ids, now, silenced=silenced, mark=mark)

    async def digest_mark(self, notifier: str) -> tuple[str, datetime] | None:
        return await _off_loop(self._sync.digest_mark, notifier)

    async def set_digest_mark(self, notifier: str, schedule: str, at: datetime) -> None:
        await _off_loop(self._sync.set_digest_mark, notifier, schedule, at)

    async def delivery_states(self) -> dict[str, int]:
        return await _off_loop(self._sync.delivery_states)


class AsyncStore:
    """A :class:`Store` for async code; ``sync`` is the store itself (for the CLI's reads)."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self.url = store.url
        self.memory = AsyncMemory(store.memory)
        self.outbox = AsyncOutbox(store.outbox)
        self.episodes = AsyncEpisodes(store.episodes)
        self.ledger = AsyncLedger(store.ledger)
        self.meta = AsyncMeta(store.meta)
        self.control = AsyncControl(Control(store))
        self._apart = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watcher-leases")

    @classmethod
    def of(cls, store: Store | AsyncStore) -> AsyncStore:
        """``store`` for async code (a sync store is wrapped; an async one is itself)."""
        return store if isinstance(store, AsyncStore) else cls(store)

    def __repr__(self) -> str:
        return repr(self.sync)

    async def apply_poll(self, record: PollRecord, routes: Routes) -> Applied:
        return await _off_loop(self.sync.apply_poll, record, routes)

    async def run(self, read: Callable[[Store], T]) -> T:
        """``read(store)`` in a worker thread: several reads that belong together (a
        status report) without a thread hop each."""
        return await _off_loop(read, self.sync)

    async def run_apart(self, call: Callable[[Store], T]) -> T:
        """``call(store)`` in this store's own thread, not queued behind the shared pool's
        work (the thread starts at the first call)."""
        return await asyncio.get_running_loop().run_in_executor(self._apart, call, self.sync)

    async def close(self) -> None:
        self._apart.shutdown(wait=False)
        await _off_loop(self.sync.close)

    async def prune(self, now: datetime, *, retention: timedelta, grace: timedelta) -> int:
        return await _off_loop(self.sync.prune, now, retention=retention, grace=grace)
