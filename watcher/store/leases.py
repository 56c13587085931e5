"""Leases in the state database: which replica polls a watch, which one delivers.

A lease is one row: a name (``watch:NAME``, ``outbox``, ``replica:ID``), its holder
(a replica id) and when it expires. Taking leases is ONE upsert that overwrites a row
only if it is the taker's own or has expired, so two replicas racing for a name can't
both win: PostgreSQL locks the conflicting row, and the loser re-checks the condition
once the winner has committed (names are taken in sorted order, so two takers never
wait on each other in a cycle). Renewing pushes ``expires_at`` forward for every lease
of a holder in one statement; a holder that stops renewing (it died, or lost the
database) loses them at ``expires_at``, and any replica may take them then.

Clocks. On PostgreSQL every time in a lease is the database server's
(``clock_timestamp()``): replicas' wall clocks may disagree by any amount without
effect. What a replica does assume is that its *monotonic* clock runs at the rate of the
database's (drift well under a second per lease): it counts a lease as its own until
``renewed + lease - margin`` by its own monotonic clock, ``renewed`` being read before
the renewing statement was sent (see :mod:`watcher.replicas`). On SQLite (one daemon
per file, :mod:`watcher.dblock`) the times are the process's clock.

A poll's results carry a fence (:meth:`Leases.fence`): the transaction that stores them
first renews the watch's lease *as its holder*, and rolls back if another replica holds
it, so a replica that lost a watch mid-poll (paused, cut off from the database) records
nothing: the new holder's poll is the one that counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, case, delete, func, literal, or_, select, update
from sqlmodel import Session, col

from watcher.errors import StoreError
from watcher.store.state import Store
from watcher.store.tables import LeaseRow, MetaRow, UtcDateTime, WatchRow

WATCH = "watch:"
OUTBOX = "outbox"
REPLICA = "replica:"
_CHUNK = 500


class ReplicasRunning(StoreError):
    """Replicas hold live leases on this database: a process beside them would double up."""


class LeaseLost(StoreError):
    """Another replica holds the lease this write needed; nothing was written."""


@dataclass(frozen=True, slots=True)
class LeaseView:
    """One lease as the database has it; ``live`` by the database's clock."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    live: bool


def watch_lease(watch: str) -> str:
    return f"{WATCH}{watch}"


def replica_lease(replica: str) -> str:
    return f"{REPLICA}{replica}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Leases:
    """The leases of one holder (a replica) over a :class:`Store`'s database."""

    def __init__(
        self,
        store: Store,
        holder: str,
        lease: timedelta,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("a lease must last a positive time")
        self.store = store
        self.holder = holder
        self.lease = lease
        self.clock = clock
        self._postgres = store.engine.dialect.name == "postgresql"

    # --- the clock ----------------------------------------------------------------------

    def _now(self) -> ColumnElement[datetime]:
        """Now, as the statement sees it: the database's clock on PostgreSQL."""
        if self._postgres:
            return func.clock_timestamp()
        return literal(self.clock(), UtcDateTime())

    def _until(self) -> ColumnElement[datetime]:
        """When a lease taken or renewed now expires."""
        if self._postgres:
            return func.clock_timestamp() + literal(self.lease)
        return literal(self.clock() + self.lease, UtcDateTime())

    # --- taking, renewing, releasing ----------------------------------------------------

    def take(self, names: Iterable[str]) -> set[str]:
        """Take (or keep) each named lease that is free, expired or already ours; the
        names now held. Atomic per name: of replicas racing for a name, one gets it."""
        wanted = sorted(set(names))
        won: set[str] = set()
        table = LeaseRow.__table__  # type: ignore[attr-defined]
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            stmt = self.store.db.insert(LeaseRow).values(
                [
                    {
                        "name": name,
                        "holder": self.holder,
                        "acquired_at": self._now(),
                        "expires_at": self._until(),
                    }
                    for name in chunk
                ]
            )
            upsert = stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "holder": stmt.excluded.holder,
                    "expires_at": stmt.excluded.expires_at,
                    "acquired_at": case(
                        (table.c.holder == stmt.excluded.holder, table.c.acquired_at),
                        else_=stmt.excluded.acquired_at,
                    ),
                },
                where=or_(
                    table.c.holder == stmt.excluded.holder, table.c.expires_at <= self._now()
                ),
            ).returning(table.c.name)
            with self.store.db.write() as s:
                won.update(str(name) for name in s.connection().execute(upsert).scalars())
        return won

    def renew(self) -> set[str]:
        """Extend every lease we hold, in one statement; the names still ours (a lease
        that expired and was taken by another replica is not among them)."""
        with self.store.db.write() as s:
            stmt = (
                update(LeaseRow)
                .where(col(LeaseRow.holder) == self.holder)
                .values(expires_at=self._until())
                .returning(col(LeaseRow.name))
            )
            return {str(name) for name in s.connection().execute(stmt).scalars()}

    def release(self, names: Iterable[str] | None = None) -> int:
        """Give up the named leases (every one we hold with None), if still ours."""
        with self.store.db.write() as s:
            stmt = delete(LeaseRow).where(col(LeaseRow.holder) == self.holder)
            if names is None:
                return int(s.exec(stmt).rowcount)
            chosen = sorted(set(names))
            released = 0
            for start in range(0, len(chosen), _CHUNK):
                chunk = chosen[start : start + _CHUNK]
                released += int(s.exec(stmt.where(col(LeaseRow.name).in_(chunk))).rowcount)
            return released

    def fence(self, session: Session, watch: str) -> None:
        """In a write's own transaction: renew ``watch``'s lease as its holder, or raise
        ``LeaseLost`` (the write then rolls back) if another replica holds it now."""
        result = session.exec(
            update(LeaseRow)
            .where(col(LeaseRow.name) == watch_lease(watch), col(LeaseRow.holder) == self.holder)
            .values(expires_at=self._until())
        )
        if not result.rowcount:
            raise LeaseLost(f"watch {watch!r} is leased to another replica now; poll discarded")

    # --- reading ------------------------------------------------------------------------

    def view(self, prefix: str = "") -> list[LeaseView]:
        """Every lease whose name starts with ``prefix``, by name."""
        return leases(self.store, prefix, now=self._now())

    def held_by_others(self, prefix: str = "") -> set[str]:
        """The names starting with ``prefix`` that another holder has a live lease of
        (names only: a replica's step reads 10,000 of them in milliseconds)."""
        with self.store.db.read() as s:
            rows = s.execute(
                select(col(LeaseRow.name)).where(
                    col(LeaseRow.name).startswith(prefix),
                    col(LeaseRow.holder) != self.holder,
                    col(LeaseRow.expires_at) > self._now(),
                )
            )
            return {str(name) for name in rows.scalars()}

    def live_replicas(self) -> int:
        """Replicas whose heartbeat lease is live (this one counts once it has taken its
        own); at least 1."""
        with self.store.db.read() as s:
            count = s.execute(
                select(func.count()).where(
                    col(LeaseRow.name).startswith(REPLICA), col(LeaseRow.expires_at) > self._now()
                )
            ).scalar_one()
        return max(int(count), 1)

    def last_polls(self, watches: Sequence[str]) -> dict[str, datetime | None]:
        """When each named watch was last polled, by any replica (absent: never)."""
        out: dict[str, datetime | None] = {}
        with self.store.db.read() as s:
            for start in range(0, len(watches), _CHUNK):
                chunk = list(watches[start : start + _CHUNK])
                rows = s.execute(
                    select(col(WatchRow.name), col(WatchRow.last_poll_at)).where(
                        col(WatchRow.name).in_(chunk)
                    )
                )
                out.update(dict(rows.all()))
        return out


def leases(
    store: Store, prefix: str = "", *, now: ColumnElement[datetime] | None = None
) -> list[LeaseView]:
    """Every lease whose name starts with ``prefix`` (for ``watcher status``, which holds
    none itself): live by the database's clock on PostgreSQL."""
    if now is None:
        postgres = store.engine.dialect.name == "postgresql"
        now = func.clock_timestamp() if postgres else literal(_utcnow(), UtcDateTime())
    live = col(LeaseRow.expires_at) > now
    with store.db.read() as s:
        query = select(LeaseRow, live).order_by(col(LeaseRow.name))
        if prefix:
            query = query.where(col(LeaseRow.name).startswith(prefix))
        return [
            LeaseView(row.name, row.holder, row.acquired_at, row.expires_at, bool(alive))
            for row, alive in s.execute(query).all()
        ]


def claim_meta(store: Store, key: str, value: str) -> bool:
    """Set a meta fact to ``value``; True only for the one caller that changed it (of
    replicas deciding the same thing at once, e.g. alerting a rejected config once)."""
    table = MetaRow.__table__  # type: ignore[attr-defined]
    stmt = store.db.insert(MetaRow).values(key=key, value=value)
    upsert = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"value": stmt.excluded.value},
        where=table.c.value != stmt.excluded.value,
    ).returning(table.c.key)
    with store.db.write() as s:
        return s.connection().execute(upsert).first() is not None


def refuse_beside_replicas(store: Store, purpose: str) -> None:
    """Raise ``ReplicasRunning`` if any replica's heartbeat is live: ``purpose`` (e.g.
    `watcher once`) would poll and send beside them, the same alerts twice."""
    running = sorted(v.name.removeprefix(REPLICA) for v in leases(store, REPLICA) if v.live)
    if running:
        raise ReplicasRunning(
            f"{len(running)} `watcher run` replicas are running on this database "
            f"({', '.join(running[:3])}{', ...' if len(running) > 3 else ''}); {purpose} "
            "would poll and send beside them, so it does not start. Stop them first "
            "(`watcher once --dry-run` works beside them)."
        )
