"""Several ``watcher run`` replicas on one database: who polls which watch, who delivers.

A replica schedules only the watches it holds the lease of (``watcher.store.leases``;
the daemon's jobs follow :attr:`Replica.watches` after each step), and a job polls only
while :meth:`Replica.holds` says the lease is still its own. Leases are sticky: a
replica keeps the watches it holds, renewing all of its leases in one statement every
``lease / 3``, and each step (:meth:`Replica.step`) it

1. renews its heartbeat and every lease it holds (what it lost is dropped at once),
2. counts the live replicas and takes its fair share, ``ceil(watches / replicas)``, of
   the watches nobody holds (never leased, released, or expired because their holder
   died), and releases what it holds above that share (not a watch mid-poll), so a new
   replica gets work and a dead one's watches are taken over,
3. takes the ``outbox`` lease if it is free: the one replica holding it delivers, and
   decides what is decided once (quiet hours releases, digests, silence-end summaries,
   retention); the others take over when it is lost.

A replica that dies keeps its leases for at most ``state.lease``; the survivors take them
at their next step: a watch is polled again within about ``lease + lease / 3`` (then at
once if overdue, else at its turn). A replica counts a lease as its own only until
``renewed + lease - margin`` on its monotonic clock (renewal read *before* the renewing
statement went out), so it stops polling and sending before anyone else may start,
whatever the wall clocks say; the fence on each poll's transaction covers the rest.

``plan_share`` is the pure decision; ``Replica`` does the I/O through the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

from watcher.errors import StoreError
from watcher.store import AsyncStore
from watcher.store.leases import OUTBOX, WATCH, Leases, replica_lease, watch_lease

logger = logging.getLogger("watcher.replicas")

MAX_MARGIN = 1.0  # seconds: a lease counts as ours until renewed + lease - margin


def default_replica_id() -> str:
    """``hostname-pid``: unique per process on a host, readable in ``watcher status``."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Share:
    """What one step does: watches to take (in order of preference) and to release."""

    take: tuple[str, ...]
    release: tuple[str, ...]
    share: int


def _spread(holder: str, name: str) -> int:
    """A stable per-replica order of watches, so replicas reaching for free watches at
    the same instant mostly reach for different ones."""
    digest = hashlib.blake2b(f"{holder}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def plan_share(
    holder: str,
    wanted: Sequence[str],
    mine: Collection[str],
    taken: Collection[str],
    replicas: int,
    busy: Collection[str] = (),
) -> Share:
    """PURE. Which watches this replica should take and release.

    ``wanted``: the enabled watches of the config; ``mine``: those it holds; ``taken``:
    those another replica holds live; ``replicas``: live replicas, this one included;
    ``busy``: watches it is polling now (never released mid-poll). Watches it holds
    that the config no longer has are released too.

    What is released never depends on ``taken``, and no more is taken with it than
    without it: a step whose plan without ``taken`` takes nothing (a replica at its
    share, the usual case) needn't read the others' leases at all.
    """
    configured = set(wanted)
    share = math.ceil(len(configured) / max(replicas, 1))
    held = [w for w in mine if w in configured]
    gone = sorted(w for w in mine if w not in configured and w not in busy)
    if len(held) > share:
        spare = sorted((w for w in held if w not in busy), key=lambda w: _spread(holder, w))
        return Share((), (*gone, *spare[: len(held) - share]), share)
    free = [w for w in configured if w not in mine and w not in taken]
    free.sort(key=lambda w: _spread(holder, w))
    return Share(tuple(free[: share - len(held)]), tuple(gone), share)


def next_step(due: float, interval: float, now: float) -> float:
    """PURE. When the step after the one due at ``due`` is due: ``interval`` later, on a
    fixed beat (a slow step doesn't push every later renewal towards the end of the
    lease), or ``now`` if that time has passed already."""
    return max(due + interval, now)


class Replica:
    """This process's leases: the watches it polls and whether it delivers."""

    def __init__(
        self,
        store: AsyncStore,
        lease: timedelta,
        replica_id: str | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = replica_id or default_replica_id()
        self.lease = lease
        self._store = store
        self.leases = Leases(store.sync, self.id, lease)
        self._monotonic = monotonic
        self.watches: set[str] = set()
        self.outbox = False
        self.replicas = 1
        self._valid_until = -math.inf
        self._failing = False
        self._lock = asyncio.Lock()

    @property
    def interval(self) -> float:
        """Seconds between steps: three renewals per lease."""
        return self.lease.total_seconds() / 3

    @property
    def _margin(self) -> float:
        return min(MAX_MARGIN, self.lease.total_seconds() / 10)

    def valid(self) -> bool:
        """Are the leases we renewed last still ours by our own monotonic clock?"""
        return self._monotonic() < self._valid_until

    def holds(self, watch: str) -> bool:
        """May this replica poll ``watch`` now?"""
        return watch in self.watches and self.valid()

    def delivers(self) -> bool:
        """May this replica send from the outbox (and decide digests, silences) now?"""
        return self.outbox and self.valid()

    def start(self, wanted: Sequence[str]) -> None:
        """The first step, before the scheduler starts (blocking; a store error raises)."""
        self._step(list(wanted), set())

    async def step(self, wanted: Sequence[str], busy: Collection[str] = ()) -> set[str]:
        """Renew, rebalance, take the outbox if free; the watches newly taken."""
        async with self._lock:
            try:
                chosen, held = list(wanted), set(busy)
                return await self._store.run_apart(lambda _store: self._step(chosen, held))
            except StoreError as exc:
                if not self._failing:
                    logger.error("cannot renew leases: %s; polling stops at their end", exc)  # noqa: TRY400
                self._failing = True
                return set()

    def _step(self, wanted: list[str], busy: set[str]) -> set[str]:
        started = self._monotonic()
        leases = self.leases
        me = replica_lease(self.id)
        renewed = leases.renew()
        if me not in renewed:
            renewed |= leases.take([me])
        self._valid_until = started + self.lease.total_seconds() - self._margin
        if self._failing:
            logger.warning("leases renewed again")
            self._failing = False
        mine = {n.removeprefix(WATCH) for n in renewed if n.startswith(WATCH)}
        lost = self.watches - mine
        if lost:
            logger.warning("lost the lease of %d watches to other replicas", len(lost))
        self.replicas = leases.live_replicas()
        plan = plan_share(self.id, wanted, mine, (), self.replicas, busy)
        if plan.take:  # short of its share: which of the others' watches are live decides
            taken = {n.removeprefix(WATCH) for n in leases.held_by_others(WATCH)}
            plan = plan_share(self.id, wanted, mine, taken, self.replicas, busy)
        if plan.release:
            leases.release([watch_lease(w) for w in plan.release])
            mine -= set(plan.release)
        got: set[str] = set()
        if plan.take:
            got = {n.removeprefix(WATCH) for n in leases.take(watch_lease(w) for w in plan.take)}
            mine |= got
        self.outbox = OUTBOX in renewed or bool(leases.take([OUTBOX]))
        self.watches = mine
        if got or plan.release:
            logger.info(
                "replica %s: holds %d watches (took %d, released %d) of %d; %d live replica(s)%s",
                self.id,
                len(mine),
                len(got),
                len(plan.release),
                len(set(wanted)),
                self.replicas,
                ", delivers" if self.outbox else "",
            )
        return got

    async def leave(self) -> None:
        """Give every lease up (a clean stop), so the others take over at their next
        step instead of after a lease."""
        self.watches = set()
        self.outbox = False
        self._valid_until = -math.inf
        try:
            await self._store.run_apart(lambda _store: self.leases.release())
        except StoreError as exc:
            logger.warning("could not release leases (they expire on their own): %s", exc)
