"""The naive strategy a generic poller (urlwatch, changedetection.io) would use.

Every interval, for every watch, fetch the first page of the watch's scope in ``newest``
order at ``limit=50`` (a rank watch: its own ``sortBy=views`` order) and diff it against
what was seen before: an unseen id is new, a seen item whose pin or status flipped is
pinned/unpinned or stopped/resumed, a tracked item whose rank climbed ``MIN_CLIMB`` places
is a rank jump. The first poll of a watch is its silent baseline. It applies the same
client-side filters as watcher (exact handle, item type), so the comparison is fair.
Credits are summed from the ``X-Credits-Used`` response headers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from bench.scoring import Key
from bench.workload import MIN_CLIMB, TRACK, WatchSpec

LIMIT = 50


@dataclass
class _Seen:
    status: str | None
    pinned: bool | None
    rank: int | None


@dataclass
class NaivePoller:
    """Polls every watch's first page and diffs it; keeps its own memory in RAM."""

    base_url: str
    api_key: str
    specs: Sequence[WatchSpec]
    concurrency: int = 8
    credits: int = 0
    requests: int = 0
    events: Counter[Key] = field(default_factory=Counter)
    _seen: dict[str, dict[str, _Seen]] = field(default_factory=dict)

    async def poll_all(self) -> int:
        """One poll of every watch; returns the credits it cost."""
        before = self.credits
        limits = httpx.Limits(max_connections=self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, limits=limits, timeout=60
        ) as http:
            gate = asyncio.Semaphore(self.concurrency)
            await asyncio.gather(*(self._poll(http, gate, spec) for spec in self.specs))
        return self.credits - before

    async def _fetch(self, http: httpx.AsyncClient, spec: WatchSpec) -> list[dict[str, object]]:
        if spec.shop_id is not None:
            params = {"sortBy": "newest", "order": "desc", "limit": str(LIMIT)}
            response = await http.get(f"/v1/shops/{spec.shop_id}/tiktok/library", params=params)
        else:
            body = {"sortBy": "newest", **spec.naive_body, "order": "desc", "limit": LIMIT}
            response = await http.post("/v1/tiktok/library/query", json=body)
        response.raise_for_status()
        self.requests += 1
        self.credits += int(response.headers.get("X-Credits-Used", "0"))
        data = response.json()["data"]
        assert isinstance(data, list)
        return data

    async def _poll(
        self, http: httpx.AsyncClient, gate: asyncio.Semaphore, spec: WatchSpec
    ) -> None:
        async with gate:
            rows = await self._fetch(http, spec)
        rows = [r for r in rows if _in_scope(spec, r)]
        first = spec.name not in self._seen
        seen = self._seen.setdefault(spec.name, {})
        if spec.rank:
            rows = rows[:TRACK]
        for row in rows:
            item = str(row["id"])
            now = _Seen(
                status=_str(row.get("status")),
                pinned=_bool(row.get("isPinned")),
                rank=_rank(row),
            )
            before = seen.get(item)
            seen[item] = now
            if first:
                continue
            if spec.rank:
                if before and before.rank and now.rank and before.rank - now.rank >= MIN_CLIMB:
                    self.events[(spec.name, "rank_jump", item)] += 1
                continue
            if before is None:
                kind = "new_ad" if row.get("type") == "ad" else "new_video"
                self.events[(spec.name, kind, item)] += 1
                continue
            if now.pinned is not None and before.pinned is not None and now.pinned != before.pinned:
                self.events[(spec.name, "pinned" if now.pinned else "unpinned", item)] += 1
            if row.get("type") == "ad" and before.status and now.status != before.status:
                kind = "ad_stopped" if now.status == "inactive" else "ad_resumed"
                self.events[(spec.name, kind, item)] += 1


def _in_scope(spec: WatchSpec, row: dict[str, object]) -> bool:
    if spec.handle is not None:
        profile = row.get("profile")
        handle = str(profile.get("handle") or "") if isinstance(profile, dict) else ""
        if handle.lstrip("@").lower() != spec.handle:
            return False
    return spec.query.type == "all" or row.get("type") == spec.query.type


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _rank(row: dict[str, object]) -> int | None:
    metrics = row.get("metrics")
    rank = metrics.get("rank") if isinstance(metrics, dict) else None
    return rank if isinstance(rank, int) else None
