"""The simulator for benchmarks: served by a child process, so it has a core of its own.

``serve`` starts ``python -m bench.sim`` (the simulator app on uvicorn with the same
socket settings as ``watcher.simulator.testing.running_simulator``, but no access log),
waits until it answers, and yields a ``SimHandle`` for its control API. The rate limit
and credits are set high (benchmarks measure credits spent, not the budget).

``WorldSpec`` says which world (the default or the large one) both serve.
``twin`` builds the same seeded ``World`` in this process: with no staged changes its
evolution depends only on the seed and the clock, so advancing it in lockstep gives the
scorer the world's exact state at each refresh (checked against the served truth log).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from watcher.simulator.app import SimConfig, create_app
from watcher.simulator.faults import quiet_reset_faults
from watcher.simulator.params import WorldParams
from watcher.simulator.testing import SimHandle, tls_context
from watcher.simulator.world import World

WATCHER_KEY = "tt_bench_watcher"
NAIVE_KEY = "tt_bench_naive"
KEYS = (WATCHER_KEY, NAIVE_KEY)
RATE_LIMIT = 1_000_000
CREDITS = 10**9
SEED = 1
READY_TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class WorldSpec:
    """Which world a benchmark serves: the default one or ``WorldParams.large``, with
    ``publishedAt`` rounded to ``publish_resolution`` seconds (large only)."""

    large: bool = False
    publish_resolution: int = 0

    def params(self) -> WorldParams:
        if self.large:
            return WorldParams.large(publish_resolution=self.publish_resolution)
        return WorldParams()

    def args(self) -> list[str]:
        if not self.large:
            return []
        return ["--large", "--publish-resolution", str(self.publish_resolution)]


DEFAULT_WORLD = WorldSpec()


@contextmanager
def serve(
    *,
    documented_only: bool = False,
    speed: float = 0.0,
    world: WorldSpec = DEFAULT_WORLD,
    unstable_ties: bool = False,
) -> Iterator[SimHandle]:
    """A simulator child process on a free loopback port, for the ``with`` block."""
    port = free_port()
    args = [sys.executable, "-m", "bench.sim", "--port", str(port), "--speed", str(speed)]
    if documented_only:
        args.append("--documented-only")
    if unstable_ties:
        args.append("--unstable-ties")
    args += world.args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=120.0, verify=tls_context()) as http:
            _wait_ready(http, child)
            yield SimHandle(base_url, WATCHER_KEY, http)
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _wait_ready(http: httpx.Client, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the simulator exited with {child.returncode}")
        try:
            if http.get("/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the simulator did not answer within {READY_TIMEOUT}s")


def twin(*, documented_only: bool = False, world: WorldSpec = DEFAULT_WORLD) -> World:
    """The served world's twin (same seed, params and start), for scoring."""
    return World(SEED, world.params(), documented_only=documented_only)


def _main() -> None:
    parser = argparse.ArgumentParser(description="the simulator, served for benchmarks")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--speed", type=float, default=0.0)
    parser.add_argument("--documented-only", action="store_true")
    parser.add_argument("--unstable-ties", action="store_true")
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--publish-resolution", type=int, default=0)
    args = parser.parse_args()
    world = WorldSpec(args.large, args.publish_resolution)
    config = SimConfig(
        seed=SEED,
        api_keys=KEYS,
        credits=CREDITS,
        rate_limit=RATE_LIMIT,
        speed=args.speed,
        documented_only=args.documented_only,
        unstable_ties=args.unstable_ties,
        params=world.params(),
    )
    app = create_app(config)
    quiet_reset_faults()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="on",
            log_level="warning",
            access_log=False,
            backlog=4096,
        )
    )
    server.run(sockets=[sock])


if __name__ == "__main__":
    _main()
