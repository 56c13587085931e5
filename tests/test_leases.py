"""Leases in the state database, on SQLite and on a real PostgreSQL: two Store objects
(two replicas' connections) racing for the same names never both win."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, update

from watcher.detect import Detection, WatchState
from watcher.planner import Outcome
from watcher.store import PollRecord, Store
from watcher.store.leases import (
    OUTBOX,
    WATCH,
    LeaseLost,
    Leases,
    claim_meta,
    leases,
    replica_lease,
    watch_lease,
)
from watcher.store.tables import LeaseRow

LEASE = timedelta(seconds=30)
T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_lease_goes_to_one_holder_until_it_expires(two_stores: tuple[Store, Store]) -> None:
    """A takes a name; B can't while A's lease runs, and takes it once it has expired.
    A's renewal then no longer returns it, and A's fence refuses A's write."""
    a, b = two_stores
    short = timedelta(seconds=0.5)
    la, lb = Leases(a, "A", short), Leases(b, "B", short)
    assert la.take([watch_lease("w1"), OUTBOX]) == {watch_lease("w1"), OUTBOX}
    assert lb.take([watch_lease("w1"), watch_lease("w2")]) == {watch_lease("w2")}
    assert la.take([watch_lease("w1")]) == {watch_lease("w1")}, "taking your own keeps it"

    deadline = time.monotonic() + 10
    while not lb.take([watch_lease("w1")]):
        assert time.monotonic() < deadline, "A's lease never expired"
        time.sleep(0.05)  # polling with a deadline for the database's clock to pass
    assert la.renew() == {OUTBOX}, "A lost w1 and keeps what no one took"
    with pytest.raises(LeaseLost), a.db.write() as s:
        la.fence(s, "w1")
    views = {v.name: v for v in la.view("watch:")}
    assert views[watch_lease("w1")].holder == "B"
    assert views[watch_lease("w2")].holder == "B"


def test_held_by_others_names_the_live_leases_of_other_holders(
    two_stores: tuple[Store, Store],
) -> None:
    """What a replica short of its share reads: the names (with the prefix) of the live
    leases another holder has; never its own, never an expired one."""
    a, b = two_stores
    la, lb = Leases(a, "A", LEASE), Leases(b, "B", LEASE)
    la.take([watch_lease("mine")])
    lb.take([watch_lease("theirs"), watch_lease("stale"), OUTBOX])
    with b.db.write() as s:  # as if B had stopped renewing "stale" a year ago
        s.exec(
            update(LeaseRow)
            .where(col(LeaseRow.name) == watch_lease("stale"))
            .values(expires_at=T0 - timedelta(days=365))
        )
    assert la.held_by_others(WATCH) == {watch_lease("theirs")}
    assert la.held_by_others() == {watch_lease("theirs"), OUTBOX}
    assert lb.held_by_others(WATCH) == {watch_lease("mine")}


def test_renewing_keeps_a_lease_past_its_first_expiry(two_stores: tuple[Store, Store]) -> None:
    """A holder that renews keeps its leases: the other never gets them."""
    a, b = two_stores
    short = timedelta(seconds=0.6)
    la, lb = Leases(a, "A", short), Leases(b, "B", short)
    la.take([watch_lease("w")])
    until = time.monotonic() + 1.5
    while time.monotonic() < until:
        assert la.renew() == {watch_lease("w")}
        assert lb.take([watch_lease("w")]) == set()
        time.sleep(0.1)  # renewing at a pace well inside the lease, for 1.5 s


def test_racing_takers_split_the_names_without_overlap(two_stores: tuple[Store, Store]) -> None:
    """Two replicas taking the same 600 names at the same instant (two threads, two
    connections): every name is won exactly once."""
    a, b = two_stores
    names = [watch_lease(f"w{n}") for n in range(600)]
    won: dict[str, set[str]] = {}
    start = threading.Barrier(2)

    def take(store: Store, holder: str) -> None:
        start.wait()
        won[holder] = Leases(store, holder, LEASE).take(names)

    threads = [threading.Thread(target=take, args=(s, h)) for s, h in ((a, "A"), (b, "B"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not won["A"] & won["B"]
    assert won["A"] | won["B"] == set(names)
    holders = {v.name: v.holder for v in leases(a, "watch:")}
    assert {n for n, h in holders.items() if h == "A"} == won["A"]


def test_release_frees_names_for_others_at_once(two_stores: tuple[Store, Store]) -> None:
    """A released lease is free for another replica without waiting for it to expire;
    releasing someone else's lease does nothing."""
    a, b = two_stores
    la, lb = Leases(a, "A", LEASE), Leases(b, "B", LEASE)
    la.take([watch_lease("x"), watch_lease("y"), OUTBOX])
    assert lb.release([watch_lease("x")]) == 0
    assert la.release([watch_lease("x")]) == 1
    assert lb.take([watch_lease("x"), watch_lease("y")]) == {watch_lease("x")}
    assert la.release() == 2
    assert lb.take([OUTBOX]) == {OUTBOX}


def test_live_replicas_count_unexpired_heartbeats(two_stores: tuple[Store, Store]) -> None:
    """Replicas are counted by their live heartbeat leases (at least one)."""
    a, b = two_stores
    la, lb = Leases(a, "A", LEASE), Leases(b, "B", timedelta(seconds=0.3))
    assert la.live_replicas() == 1
    la.take([replica_lease("A")])
    lb.take([replica_lease("B")])
    assert la.live_replicas() == 2
    deadline = time.monotonic() + 10
    while la.live_replicas() != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling with a deadline for B's heartbeat to expire


def test_a_fenced_poll_is_stored_only_by_the_watchs_holder(two_stores: tuple[Store, Store]) -> None:
    """apply_poll under a fence: stored for the holder, refused (nothing written) for a
    replica whose lease was taken over."""
    a, b = two_stores
    la, lb = Leases(a, "A", LEASE), Leases(b, "B", LEASE)
    a.fence, b.fence = la.fence, lb.fence
    la.take([watch_lease("w")])
    record = PollRecord(
        watch="w",
        started_at=T0,
        duration_ms=5,
        outcome=Outcome.BASELINE,
        detection=Detection(WatchState(has_baseline=True, baseline_at=T0), (), frozenset()),
    )
    with pytest.raises(LeaseLost):
        b.apply_poll(record, {})
    assert b.memory.watches() == []
    a.apply_poll(record, {})
    assert [w.name for w in b.memory.watches()] == ["w"]
    assert la.last_polls(["w", "never"]) == {"w": T0}


def test_sqlite_leases_use_the_injected_clock(tmp_path: Path) -> None:
    """On SQLite the lease times are the process's clock (one daemon per file)."""
    store = Store(f"sqlite:///{tmp_path}/s.db")
    clock = Clock()
    try:
        la, lb = Leases(store, "A", LEASE, clock=clock), Leases(store, "B", LEASE, clock=clock)
        la.take(["n"])
        clock.now += LEASE - timedelta(seconds=1)
        assert lb.take(["n"]) == set()
        clock.now += timedelta(seconds=2)
        assert lb.take(["n"]) == {"n"}
        [view] = la.view()
        assert view.expires_at == clock.now + LEASE
    finally:
        store.close()


def test_claim_meta_is_won_once_per_value(two_stores: tuple[Store, Store]) -> None:
    """Of replicas deciding the same fact, one changes it: it alone alerts."""
    a, b = two_stores
    assert claim_meta(a, "config.rejected_version", "v1")
    assert not claim_meta(b, "config.rejected_version", "v1")
    assert claim_meta(b, "config.rejected_version", "v2")
    assert a.meta.get("config.rejected_version") == "v2"


def test_a_lease_must_last() -> None:
    with pytest.raises(ValueError, match="positive"):
        Leases(Store("sqlite://"), "A", timedelta(0))
