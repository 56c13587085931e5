"""Benchmark 2: from the poll that sees a change to the alert arriving at a receiver.

In-process, as ``watcher once`` does it: the ``Runner`` polls every watch right after a
refresh, then ``Outbox.flush`` renders and sends the digests through apprise's ``json://``
to a local HTTP receiver. Latency of a message = its arrival at the receiver minus the
start of the poll of its watch (the ``[watch]`` prefix of every title says which). One
notifier URL sends its messages in order, so a busy refresh queues them.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from bench.sim import WATCHER_KEY, serve
from bench.stats import percentiles
from bench.workload import build, config_yaml
from tests.receivers import HttpReceiver
from watcher import app
from watcher.config import load_settings
from watcher.outbox import Outbox
from watcher.runner import Runner
from watcher.store import Store

DAYS = 12
PER_KIND = 4
TITLE = re.compile(r"^\[([^\]]+)\]")


class TimedReceiver(HttpReceiver):
    """A json receiver that also notes when each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, bytes]] = []

    async def _handle(self, request: Request) -> Response:
        at = time.perf_counter()
        self.arrivals.append((at, await request.body()))
        return await super()._handle(request)


def _watch_of(body: bytes) -> str | None:
    title = json.loads(body).get("title") or ""
    match = TITLE.match(str(title))
    return match.group(1) if match else None


async def _run(folder: Path, days: int) -> dict[str, object]:
    latencies: list[float] = []
    messages = events = 0
    with serve() as sim, TimedReceiver() as receiver:
        specs = build(sim.world(), per_kind=PER_KIND)
        path = folder / "watches.yaml"
        yaml = config_yaml(
            sim.base_url, WATCHER_KEY, folder / "s.db", specs, notify_url=receiver.url
        )
        path.write_text(yaml, "utf-8")
        settings = load_settings(path, {})
        store = Store(settings.state.database)
        async with app.make_client(settings) as client:
            runner = Runner(settings, store, client)
            outbox = Outbox(settings, store)
            await asyncio.gather(*(runner.poll(w) for w in settings.watches))
            for _day in range(days):
                sim.advance_days(1)
                runner.forget_freshness()
                starts: dict[str, float] = {}

                async def poll(watch: object, starts: dict[str, float] = starts) -> int:
                    starts[watch.name] = time.perf_counter()  # type: ignore[attr-defined]
                    outcome = await runner.poll(watch)  # type: ignore[arg-type]
                    return len(outcome.events)

                seen = len(receiver.arrivals)
                counts = await asyncio.gather(*(poll(w) for w in settings.watches))
                events += sum(counts)
                await outbox.flush()
                for at, body in receiver.arrivals[seen:]:
                    watch = _watch_of(body)
                    if watch in starts:
                        latencies.append(at - starts[watch])
                        messages += 1
        store.close()
    return {
        "watches": len(specs),
        "refreshes": days,
        "events": events,
        "messages": messages,
        "seconds": percentiles(latencies),
    }


def run(days: int = DAYS) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
        return asyncio.run(_run(Path(folder), days))
