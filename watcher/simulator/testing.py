"""A real simulator for tests and benchmarks: ``with running_simulator() as sim: ...``.

It serves over real HTTP on a free loopback port from a background thread, waits until
it answers (polling with a deadline, never a fixed sleep), and stops cleanly on exit.
``SimHandle`` wraps the /_sim control API so tests never build those requests by hand::

    with running_simulator(seed=7) as sim:
        item_id = sim.change("new_item", type="ad", indexLagHours=30)
        sim.advance_days(1)
        assert any(c["itemId"] == item_id for c in sim.truth())
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import uvicorn

from watcher.simulator.app import SimConfig, create_app
from watcher.simulator.clock import parse_iso
from watcher.simulator.faults import quiet_reset_faults
from watcher.simulator.params import WorldParams

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
DAY_SECONDS = 86400


@dataclass
class SimHandle:
    """A running simulator: where it is, the key to use, and its control API."""

    base_url: str
    api_key: str
    _http: httpx.Client = field(repr=False)

    def _post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        response = self._http.post(path, json=body)
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def api_get(self, path: str, **params: str | int) -> dict[str, object]:
        """``GET`` a public API route with the handle's key (the demo picks its targets so,
        outside watcher's own client)."""
        response = self._http.get(
            path, params=params, headers={"Authorization": f"Bearer {self.api_key}"}
        )
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def world(self) -> dict[str, object]:
        """``GET /_sim/world``: now, latestReadyDate, shops, profiles, hashtags, keywords."""
        response = self._http.get("/_sim/world")
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def advance(self, seconds: float) -> dict[str, object]:
        """Move the clock by ``seconds``; returns ``{"now", "refreshes"}``."""
        return self._post("/_sim/advance", {"seconds": seconds})

    def advance_days(self, n: int) -> dict[str, object]:
        """Move the clock by ``n`` whole days (so exactly ``n`` refreshes)."""
        return self.advance(n * DAY_SECONDS)

    def change(self, kind: str, **fields: object) -> str:
        """Stage a change for the next refresh; returns the item id it concerns."""
        return str(self._post("/_sim/change", {"kind": kind, **fields})["itemId"])

    def truth(self, since: str | None = None) -> list[dict[str, object]]:
        """Every change the world made strictly after ``since`` (ISO), oldest first."""
        params = {"since": since} if since else {}
        response = self._http.get("/_sim/truth", params=params)
        response.raise_for_status()
        changes: list[dict[str, object]] = response.json()["changes"]
        return changes

    def faults(self, rate: float, kinds: Sequence[str]) -> None:
        """Make /v1 requests fail at ``rate`` with faults drawn from ``kinds``."""
        self._post("/_sim/faults", {"rate": rate, "kinds": list(kinds)})

    def hold_after(self, requests: int | None) -> None:
        """Let ``requests`` more /v1 requests through, then hold the rest unanswered until
        ``hold_after(None)`` (which also clears other faults)."""
        self._post("/_sim/faults", {"rate": 0.0, "kinds": [], "holdAfter": requests})

    def fault_state(self) -> dict[str, object]:
        """``GET /_sim/faults``: rate, kinds, holdAfter, admitted and held requests."""
        response = self._http.get("/_sim/faults")
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def set_credits(self, balance: int, key: str | None = None) -> None:
        """Set the balance of ``key`` (default: the first key)."""
        self._post("/_sim/credits", {"balance": balance, "key": key or self.api_key})

    def now(self) -> datetime:
        """The simulated now."""
        moment = parse_iso(str(self.world()["now"]))
        if moment is None:  # pragma: no cover - the server always writes ISO
            raise ValueError("the simulator sent an unreadable time")
        return moment


@contextmanager
def running_simulator(
    *,
    seed: int = 1,
    api_keys: Sequence[str] = ("tt_sim_demo",),
    credits: int = 10000,
    rate_limit: int = 60,
    speed: float = 0.0,
    documented_only: bool = False,
    unstable_ties: bool = False,
    params: WorldParams | None = None,
) -> Iterator[SimHandle]:
    """Serve a simulator on 127.0.0.1 (free port) in a thread for the ``with`` block."""
    config = SimConfig(
        seed=seed,
        api_keys=tuple(api_keys),
        credits=credits,
        rate_limit=rate_limit,
        speed=speed,
        documented_only=documented_only,
        unstable_ties=unstable_ties,
        params=params or WorldParams(),
    )
    app = create_app(config)
    quiet_reset_faults()
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that name it, and
    # without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, http="h11", ws="none", lifespan="on", log_level="warning", log_config=None
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=30.0, verify=tls_context()) as http:
            _wait_ready(http, thread)
            yield SimHandle(base_url, config.api_keys[0], http)
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT)
        if not thread.is_alive():  # uvicorn closes it itself; never pull it from under it
            sock.close()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One shared default TLS context: each new one costs tens of ms to load certificates.

    The simulator speaks plain HTTP; httpx builds a context for every client anyway, so
    tests creating many clients pass ``verify=tls_context()`` to stay fast.
    """
    return ssl.create_default_context()


def _wait_ready(http: httpx.Client, thread: threading.Thread) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the simulator thread died while starting")
        try:
            if http.get("/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"the simulator did not answer within {READY_TIMEOUT}s")
