"""Ground truth for the credits benchmark: expected events and the credit lower bound.

At each refresh the truth log says what changed; the ``Oracle`` says which watches each
changed item belongs to (the scope as of that refresh). From these:

- expected events per (watch, kind, item), counted (an ad stopped twice counts twice);
- the lower bound of credits: per watch and refresh, the distinct rows that changed in
  its scope in a way a change feed reports (new, re-indexed, pinned, unpinned, stopped,
  resumed; not rank moves, not removals), plus for rank watches the tracked set read once
  per refresh. Idle polls cost 0 in the bound;
- the full reread: per watch and refresh, the rows its scope serves (what reading it
  whole again costs), the yardstick of the large-scope workload.

Rank jumps have no truth entry of their own (the truth logs every move of 10+ places, not
which items a watch tracks), so they are derived from the world: an item in the tracked
set whose rank improved by ``MIN_CLIMB`` or more since the set last held it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.workload import MIN_CLIMB, Oracle, WatchSpec

SAMPLES = 5
Key = tuple[str, str, str]
"""(watch, event kind, item id)."""

_KIND = {
    "pinned": "pinned",
    "unpinned": "unpinned",
    "stopped": "ad_stopped",
    "resumed": "ad_resumed",
}
FEED_KINDS = frozenset({"new_item", "restored", "pinned", "unpinned", "stopped", "resumed"})
GROUPS = {
    "new_ad": "new",
    "new_video": "new",
    "pinned": "pin",
    "unpinned": "pin",
    "ad_stopped": "stop",
    "ad_resumed": "stop",
    "rank_jump": "rank",
}


def event_of(change: Mapping[str, object]) -> str | None:
    kind = str(change["kind"])
    if kind == "new_item":
        return "new_ad" if change.get("type") == "ad" else "new_video"
    if kind in {"stopped", "resumed"} and change.get("type") != "ad":
        return None
    return _KIND.get(kind)


@dataclass
class Truth:
    """What happened to the workload's watches, refresh by refresh."""

    specs: Sequence[WatchSpec]
    expected: Counter[Key] = field(default_factory=Counter)
    lower_bound: int = 0
    reread: int = 0
    """What rereading every watch's whole scope at every refresh costs: the rows each
    scope serves then (a rank watch: its tracked set)."""
    refreshes: int = 0
    changes: int = 0
    _ranks: dict[tuple[str, str], int] = field(default_factory=dict)

    def observe_baseline(self, oracle: Oracle) -> None:
        """Before the first refresh: the rank watches' tracked sets as their baseline."""
        for spec in self.specs:
            if spec.rank:
                for item, rank in oracle.tracked(spec).items():
                    self._ranks[(spec.name, item)] = rank

    def observe_refresh(self, oracle: Oracle, changes: Iterable[Mapping[str, object]]) -> None:
        """One refresh's truth entries, scoped as the world is right after it."""
        self.refreshes += 1
        changes = list(changes)
        self.changes += len(changes)
        for spec in self.specs:
            if spec.rank:
                tracked = oracle.tracked(spec)
                self.lower_bound += len(tracked)
                self.reread += len(tracked)
                for item, rank in tracked.items():
                    before = self._ranks.get((spec.name, item))
                    if before is not None and before - rank >= MIN_CLIMB:
                        self.expected[(spec.name, "rank_jump", item)] += 1
                    self._ranks[(spec.name, item)] = rank
                continue
            scope = oracle.scope(spec)
            self.reread += oracle.served(spec)
            rows: set[str] = set()
            for change in changes:
                item = str(change["itemId"])
                if change["kind"] not in FEED_KINDS or item not in scope:
                    continue
                rows.add(item)
                event = event_of(change)
                if event is not None:
                    self.expected[(spec.name, event, item)] += 1
            self.lower_bound += len(rows)


@dataclass(frozen=True)
class Score:
    """Detected events against the expected ones, overall and per event group."""

    expected: int
    detected: int
    matched: int
    duplicates: int
    false_positives: int
    by_group: Mapping[str, tuple[int, int]]
    """group -> (matched, expected)."""
    samples: Mapping[str, list[str]] = field(default_factory=dict)
    """A few missed, duplicated and false keys, to find the cause."""

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else 1.0

    def as_json(self) -> dict[str, object]:
        return {
            "expected": self.expected,
            "detected": self.detected,
            "matched": self.matched,
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
            "duplicates": self.duplicates,
            "false_positives": self.false_positives,
            "recall_by_group": {
                g: round(m / e, 4) if e else None for g, (m, e) in self.by_group.items()
            },
            "expected_by_group": {g: e for g, (_m, e) in self.by_group.items()},
            "samples": dict(self.samples),
        }


def score(expected: Counter[Key], got: Counter[Key]) -> Score:
    """Recall and precision of ``got``; a key detected more often than it happened is a
    duplicate, a key that never happened a false positive."""
    matched = sum((expected & got).values())
    duplicates = sum(max(0, n - expected[k]) for k, n in got.items() if k in expected)
    false_positives = sum(n for k, n in got.items() if k not in expected)
    groups: dict[str, list[int]] = {}
    for key, n in expected.items():
        entry = groups.setdefault(GROUPS.get(key[1], key[1]), [0, 0])
        entry[0] += min(n, got.get(key, 0))
        entry[1] += n
    samples = {
        "missed": ["|".join(k) for k in list((expected - got).keys())[:SAMPLES]],
        "duplicated": ["|".join(k) for k, n in got.items() if k in expected and n > expected[k]][
            :SAMPLES
        ],
        "false": ["|".join(k) for k in got if k not in expected][:SAMPLES],
    }
    return Score(
        samples=samples,
        expected=sum(expected.values()),
        detected=sum(got.values()),
        matched=matched,
        duplicates=duplicates,
        false_positives=false_positives,
        by_group={g: (m, e) for g, (m, e) in sorted(groups.items())},
    )
