"""``watcher demo``: a zero-config tour.

Starts the bundled simulator on a free loopback port with a fast clock (a simulated day
every 30 seconds), writes a demo config (a shop, a creator's handle, a hashtag and a
rank-movers query) into a temporary folder, stages a few changes so something happens
at the first data refresh (new ads, one indexed late, a pin, a rank jump), and runs the
real daemon with a console notifier: alerts print here as they are detected, followed by
a status table after each refresh. Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from watcher.daemon import Daemon
from watcher.planner import Outcome
from watcher.poller import PollOutcome
from watcher.simulator.testing import SimHandle, running_simulator
from watcher.status import build_status, format_status

logger = logging.getLogger("watcher.demo")

DAY_SECONDS = 30.0
SPEED = 86_400 / DAY_SECONDS
POLL_EVERY = "5s"


def _get(sim: SimHandle, path: str, **params: str | int) -> dict[str, Any]:
    data: dict[str, Any] = sim.api_get(path, **params)
    return data


def _pick_targets(sim: SimHandle) -> dict[str, str]:
    """The busiest shop, a profile with unpinned items, and a hashtag from the world."""
    world: dict[str, Any] = sim.world()
    shops, profiles, tags = world["shops"], world["profiles"], world["hashtags"]
    return {
        "shop": str(shops[0]["id"]),
        "shop_name": str(shops[0].get("name") or shops[0]["domain"]),
        "handle": str(profiles[0]["handle"]).lstrip("@"),
        "hashtag": str(tags[0]).lstrip("#"),
    }


def _stage(sim: SimHandle, targets: Mapping[str, str]) -> None:
    """Changes that land at the first refresh, so the tour shows every kind early."""
    shop = targets["shop"]
    sim.change("new_item", type="ad", shopId=shop, caption="NEW drop: 2-for-1 gummies @everyone")
    sim.change("new_item", type="ad", shopId=shop, indexLagHours=40)
    items = _get(
        sim, "/v1/tiktok/library", search=targets["handle"], searchArea="profile", limit=20
    )["data"]
    mine = [i for i in items if str(i["profile"]["handle"]).lstrip("@") == targets["handle"]]
    unpinned = [i for i in mine if not i.get("isPinned")]
    if unpinned:
        sim.change("pin", itemId=unpinned[0]["id"])
    movers = _get(
        sim, "/v1/tiktok/library", sortBy="views", order="desc", status="active", limit=25
    )["data"]
    climbers = [m for m in movers if (m["metrics"].get("rank") or 0) > 40]
    if climbers:
        rank = int(climbers[0]["metrics"]["rank"])
        sim.change("rank", itemId=climbers[0]["id"], rank=max(1, rank - 35))


def free_port() -> int:
    """A loopback port free right now, for the demo's dashboard."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_config(
    base_url: str, api_key: str, db: Path, targets: Mapping[str, str], port: int = 8080
) -> str:
    """The demo's watches.yaml: four watches, alerts to the terminal, the dashboard on
    ``port`` (loopback)."""
    return f"""\
# The demo config `watcher demo` writes; copy it as a starting point for your own.
version: 1
api:
  base_url: {base_url}
  api_key: {api_key}
  max_requests_per_minute: 600
state:
  database: sqlite:///{db}
budget:
  monthly_credits: 10000
health:                        # /healthz, /metrics and the dashboard
  port: {port}
  host: 127.0.0.1
defaults:
  every: {POLL_EVERY}          # polls between data refreshes are free
  on_first_run: silent
  notify: [terminal]
notifiers:
  terminal:
    urls: ["console://"]
ops_notify: [terminal]
watches:
  - name: {targets["shop_name"].lower().replace(" ", "-")[:30] or "shop"}
    shop: {targets["shop"]}
  - name: creator-{targets["handle"][:20].replace(".", "-")}
    handle: "@{targets["handle"]}"
  - name: hashtag-{targets["hashtag"][:20]}
    hashtag: {targets["hashtag"]}
    events: [new_ad, new_video]
  - name: top-movers
    query: {{type: all, status: active, sortBy: views}}
    events: [rank_jump]
    rank_jump: {{min_climb: 30, track: 25}}
"""


@contextlib.contextmanager
def _world() -> Iterator[SimHandle]:
    with running_simulator(seed=1, speed=SPEED, rate_limit=600, credits=100_000) as sim:
        yield sim


def _status_printer(daemon: Daemon) -> Any:
    seen: set[str] = set()
    printing: set[asyncio.Task[None]] = set()

    async def show() -> None:
        settings = daemon.settings
        if settings is None:
            return
        refresh = await daemon.async_store.memory.watches()
        key = ",".join(sorted(str(w.refresh) for w in refresh))
        if key in seen or len({w.refresh for w in refresh}) != 1:
            return  # print once per refresh, when every watch has caught up
        seen.add(key)
        now = daemon.clock()
        report = await daemon.async_store.run(lambda store: build_status(settings, store, now))
        print(f"\n{format_status(report)}\n", flush=True)

    def hook(outcome: PollOutcome) -> None:
        """Called on the daemon's loop: the store is read off it, in a task."""
        if outcome.outcome is not Outcome.OK:
            return
        task = asyncio.ensure_future(show())
        printing.add(task)
        task.add_done_callback(printing.discard)

    return hook


def run_demo() -> int:
    """Run the tour until Ctrl-C."""
    with tempfile.TemporaryDirectory(prefix="watcher-demo-") as folder, _world() as sim:
        targets = _pick_targets(sim)
        path = Path(folder) / "watches.yaml"
        port = free_port()
        db = Path(folder) / "demo.db"
        path.write_text(demo_config(sim.base_url, sim.api_key, db, targets, port), "utf-8")
        _stage(sim, targets)
        print(
            f"watcher demo: simulator on {sim.base_url} (a simulated day every "
            f"{DAY_SECONDS:.0f}s), config {path}\n"
            f"Dashboard: http://127.0.0.1:{port}/ (fills as changes are detected)\n"
            "Alerts print below as the daemon detects them; Ctrl-C stops.\n",
            flush=True,
        )
        daemon = Daemon(path, {})
        daemon.on_poll.append(_status_printer(daemon))
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(daemon.run())
    return 0
