"""Reconciling a stored ``newest`` order with the list as the API holds it (pure).

Each row of ``CASES``: the stored order, the list now (ids, newest first), the identity
probes forced (``verify``), and what reconcile must make of it: the requests (page x
limit), the rows found inserted and the stored rows found gone.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from watcher.models import Item
from watcher.planner.order import Found, Row, covering, in_order, reconcile

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def item(n: int, published: float | None = None) -> Item:
    """Item ``n``, published ``published`` hours after T0 (default: ``n`` hours)."""
    hours = n if published is None else published
    return Item(id=f"tiktok_{n}", published_at=T0 + timedelta(hours=hours))


def newest(*items: Item) -> list[Item]:
    """Items in ``newest`` order: publishedAt, then id, descending."""
    return sorted(items, key=lambda i: (i.published_at, int(i.id[7:])), reverse=True)


def stored(*items: Item) -> list[Row]:
    return in_order([Row.of(i.id, i.published_at) for i in items if i.published_at])


def drive(
    order: Sequence[Row], now: Sequence[Item], *, verify: int = 0, first: int | None = None
) -> tuple[Found, list[str]]:
    """Run reconcile against ``now``; the (page x limit) of every read, in order."""
    requests: list[str] = []

    def read(page: int, limit: int) -> Generator[object, object, Sequence[Item]]:
        requests.append(f"{page}x{limit}")
        return now[(page - 1) * limit : page * limit]
        yield  # a generator, as the planner's reads are

    steps = reconcile(order, len(now), read, verify=verify, first=first)  # type: ignore[arg-type]
    try:
        next(steps)
    except StopIteration as stop:
        return stop.value, requests
    raise AssertionError("reconcile asked for a request outside its reader")


@dataclass(frozen=True)
class Case:
    name: str
    before: tuple[int, ...]
    after: tuple[int, ...]
    requests: tuple[str, ...]
    inserted: tuple[int, ...] = ()
    missing: tuple[int, ...] = ()
    verify: int = 0
    first: int | None = None
    late: dict[int, float] | None = None
    """Items published at another hour than their number (late-indexed ones)."""


BIG = tuple(range(1, 41))
CASES = [
    Case("nothing moved: free", BIG, BIG, ()),
    Case(
        "a new item on top: one probe finds the old top row shifted, the row above is read",
        BIG,
        (*BIG, 50),
        ("2x1", "1x1"),
        inserted=(50,),
    ),
    Case(
        "a late item deep in the list: found where its publishedAt puts it",
        BIG,
        (*BIG, 99),
        ("2x1", "22x1", "32x1", "27x1", "30x1", "31x1"),
        inserted=(99,),
        late={99: 10.5},
    ),
    Case(
        "a removal in the middle: bisected to the rows around it, the row is gone",
        BIG,
        tuple(n for n in BIG if n != 17),
        ("20x1", "30x1", "25x1", "23x1", "24x1"),
        missing=(17,),
    ),
    Case(
        "an insertion and a deletion cancel in the count: no probe, not seen",
        BIG,
        (*(n for n in BIG if n != 3), 50),
        (),
    ),
    Case(
        "the same pair with identity probes: the shifted rows between them are found",
        BIG,
        (*(n for n in BIG if n != 3), 50),
        ("21x1", "31x1", "36x1", "39x1", "19x2", "2x1", "1x1"),
        inserted=(50,),
        missing=(3,),
        verify=2,
    ),
    Case(
        "the same pair with a first probe below the band of new items: the row below the "
        "band is found one down (36, then 35 itself), the shift shows",
        BIG,
        (*(n for n in BIG if n != 3), 50),
        ("6x1", "7x1", "24x1", "33x1", "37x1", "39x1", "38x1", "2x1", "1x1"),
        inserted=(50,),
        missing=(3,),
        first=5,
    ),
    Case(
        "a small list that changed: probed down to segments of two, read",
        (1, 2, 3),
        (1, 3, 4, 5),
        ("2x1", "2x2", "1x1"),
        inserted=(4, 5),
        missing=(2,),
    ),
    Case("an emptied list: every stored row is gone, for free", (1, 2), (), (), missing=(2, 1)),
    Case(
        "a probe on rows sharing a publishedAt: the rows around them are read to an untied "
        "row on each side (14 rows, not the 40 of the segment), the rest bisected",
        BIG,
        (*(n for n in BIG if n != 3), 50),
        ("22x1", "2x14", "33x1", "37x1", "39x1", "38x1", "2x1", "1x1"),
        inserted=(50,),
        missing=(3,),
        first=21,
        late={18: 20, 19: 20, 21: 20, 22: 20},
    ),
    Case(
        "identity probes step off tied rows: an unchanged list with ties costs its probes",
        BIG,
        BIG,
        ("18x1", "30x1", "9x1"),
        verify=2,
        late={18: 20, 19: 20, 21: 20, 22: 20},
    ),
    Case(
        "a segment of ties only: read whole, whatever order they come back in",
        (1, 2, 3, 4),
        (1, 2, 3, 4, 9),
        ("2x1", "1x5"),
        inserted=(9,),
        late={1: 5, 2: 5, 3: 5, 4: 5, 9: 5},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reconcile_table(case: Case) -> None:
    """Each case makes exactly its reads and finds exactly its insertions and deletions."""
    late = case.late or {}
    made = {n: item(n, late.get(n)) for n in {*case.before, *case.after}}
    found, requests = drive(
        stored(*(made[n] for n in case.before)),
        newest(*(made[n] for n in case.after)),
        verify=case.verify,
        first=case.first,
    )
    assert tuple(requests) == case.requests
    assert tuple(i.id for i in found.inserted) == tuple(f"tiktok_{n}" for n in case.inserted)
    assert tuple(found.missing) == tuple(f"tiktok_{n}" for n in case.missing)


def test_an_unstable_tie_order_is_read_never_guessed() -> None:
    """Rows sharing a publishedAt come back in another order than stored: whatever the
    shuffle, a new row is found and no stored row is taken for gone."""
    tied = [item(n, published=5) for n in range(1, 31)]
    for seed in range(20):
        now = [*tied, item(100, published=1)]
        random.Random(seed).shuffle(now)
        now = sorted(now, key=lambda i: i.published_at, reverse=True)  # ties stay shuffled
        found, _requests = drive(stored(*tied), now)
        assert [i.id for i in found.inserted] == ["tiktok_100"]
        assert found.missing == [] or all(m in {i.id for i in tied} for m in found.missing)
        gone = set(found.missing) - {i.id for i in now}
        assert gone == set(), "a row present is never reported gone"


@pytest.mark.parametrize(("spread", "share"), [(0.3, 1.2), (3.0, 0.5), (30.0, 0.5)])
def test_with_ties_in_any_order_insertions_alone_and_deletions_alone_are_found_exactly(
    spread: float, share: float
) -> None:
    """Random lists whose ``publishedAt`` repeat (``spread`` distinct hours per row: 0.3 is
    nearly all ties), tie groups shuffled on the way back, random probes forced: where
    only rows were inserted or only deleted (nothing can cancel), reconcile finds exactly
    them; never a present row gone, never a known row new. It reads under half the rows
    a whole reread of each list would, unless nearly all rows are ties (then the changed
    segments are read whole, a little over one reread)."""
    read_rows = listed = 0
    for seed in range(150):
        rng = random.Random(seed)
        n = rng.randint(5, 300)
        hours = int(n * spread) + 1
        before = [item(k, published=rng.randint(0, hours)) for k in range(1, n + 1)]
        after = list(before)
        inserted: set[str] = set()
        deleted: set[str] = set()
        if rng.random() < 0.5:
            deleted = {i.id for i in rng.sample(before, rng.randint(1, max(1, n // 10)))}
            after = [i for i in after if i.id not in deleted]
        else:
            new = [
                item(10_000 + k, published=rng.randint(0, hours) + 0.5 * rng.randint(0, 1))
                for k in range(rng.randint(1, 8))
            ]
            inserted = {i.id for i in new}
            after += new
        groups: dict[datetime, list[Item]] = {}
        for i in after:
            groups.setdefault(i.published_at or T0, []).append(i)
        now: list[Item] = []
        for stamp in sorted(groups, reverse=True):
            rng.shuffle(groups[stamp])
            now += groups[stamp]
        first = rng.choice([None, rng.randint(0, len(now))])
        found, requests = drive(stored(*before), now, verify=rng.choice([0, 2, 4]), first=first)
        assert {i.id for i in found.inserted} == inserted, seed
        assert set(found.missing) == deleted, seed
        read_rows += sum(int(r.split("x")[1]) for r in requests)
        listed += len(now)
    assert read_rows < share * listed


def test_new_rows_in_the_band_never_cancel_a_deletion_below_it() -> None:
    """Random lists (ties included, shuffled on the way back), one to three rows
    inserted in the band (``first`` rows from the top; some tied with band rows), one row
    deleted below it, no identity probes: the row below the band is probed where it
    must now stand, so both are always found, even when the band holds fewer rows than
    were inserted (a probe at ``first`` itself then lands among the new rows, and the
    insertion and deletion below it cancelled)."""
    for seed in range(800):
        rng = random.Random(seed)
        n = rng.randint(10, 300)
        before = [item(k, published=rng.randint(0, 3 * n)) for k in range(1, n + 1)]
        order = stored(*before)
        band = rng.randint(1, n - 2)
        edge = datetime.fromtimestamp(-order[band].key[0], UTC)  # the row below the band
        latest = max(i.published_at or T0 for i in before)
        deleted = {rng.choice(order[band:]).id}
        new: list[Item] = []
        for k in range(rng.randint(1, 3)):
            at = edge + (latest - edge) * rng.uniform(0.01, 1.2)
            if rng.random() < 0.3:  # tied with a row of the band
                at = datetime.fromtimestamp(-rng.choice(order[:band]).key[0], UTC)
            new.append(Item(id=f"tiktok_{20_000 + k}", published_at=at))
        groups: dict[datetime, list[Item]] = {}
        for i in [*(i for i in before if i.id not in deleted), *new]:
            groups.setdefault(i.published_at or T0, []).append(i)
        now: list[Item] = []
        for stamp in sorted(groups, reverse=True):
            rng.shuffle(groups[stamp])
            now += groups[stamp]
        found, _requests = drive(order, now, first=band)
        assert {i.id for i in found.inserted} == {i.id for i in new}, seed
        assert set(found.missing) == deleted, seed


@pytest.mark.parametrize(
    ("lo", "hi", "pages"),
    [
        (0, 1, [(1, 1)]),
        (5, 6, [(6, 1)]),
        (4, 9, [(1, 9)]),
        (10, 15, [(3, 5)]),
        (0, 120, [(1, 50), (2, 50), (3, 50)]),
    ],
)
def test_covering_reads_a_range_with_the_fewest_rows(
    lo: int, hi: int, pages: list[tuple[int, int]]
) -> None:
    """One page whose limit covers the range when one exists, else pages of 50."""
    assert covering(lo, hi) == pages


def test_past_the_result_window_nothing_is_asked() -> None:
    """Rows past 10,000 can't be read (page x limit <= 10,000): reconcile never asks."""
    before = [Row.of(f"tiktok_{n}", T0 - timedelta(seconds=n)) for n in range(10_010)]
    now = [Item(id=r.id, published_at=T0 - timedelta(seconds=int(r.id[7:]))) for r in before]
    now = [*now[:10_004], *now[10_005:]]
    found, requests = drive(before, now)
    assert all(int(r.split("x")[0]) * int(r.split("x")[1]) <= 10_000 for r in requests)
    assert found.missing == []


@pytest.mark.parametrize(
    ("rows", "depth"),
    [(0, 2), (20, 2), (32, 2), (33, 3), (64, 3), (65, 5), (128, 5), (129, 6), (400, 7), (10**6, 9)],
)
def test_identity_probes_grow_with_the_active_ads(rows: int, depth: int) -> None:
    """3 probes up to 32 ads, a level more per doubling (8 to 16 ads between probes), one
    more past 64 ads (4 to 8 between probes), at most 9 levels."""
    from watcher.planner.newest import verify_depth  # noqa: PLC0415  # one helper, here only

    assert verify_depth(rows) == depth
