"""Benchmark 5: memory of ``watcher run`` (a subprocess) over 10,000 polls of 1,000 watches.

The daemon polls 1,000 watches every few seconds (baselines stored beforehand, as in
``bench.scale``) against a simulator child process. Its RSS is read from
``/proc/PID/status`` (``VmRSS``) twice a second and its poll count from its own
``/metrics`` (``watcher_polls_total``). Growth should flatten: the second half of the run
should add (almost) nothing to what the first half ended with.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.scale import config, seed_baselines
from bench.sim import ROOT, free_port, serve

WATCHES = 1_000
EVERY = 8
POLLS = 10_000
TIME_LIMIT = 300.0
SAMPLE_SECONDS = 0.5
POLLS_LINE = re.compile(r'^watcher_polls_total\{outcome="[^"]+"\} ([0-9.e+]+)$', re.MULTILINE)


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _polls(http: httpx.Client) -> int:
    try:
        text = http.get("/metrics", timeout=5).text
    except httpx.TransportError:
        return 0
    return int(sum(float(n) for n in POLLS_LINE.findall(text)))


def run(
    watches: int = WATCHES, every: int = EVERY, polls: int = POLLS, time_limit: float = TIME_LIMIT
) -> dict[str, object]:
    port = free_port()
    samples: list[tuple[float, int, int]] = []
    with serve() as sim, tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
        path = Path(folder) / "watches.yaml"
        extra = f"health: {{port: {port}}}"
        path.write_text(config(sim, Path(folder) / "s.db", watches, every, extra), "utf-8")
        seed_baselines(path, sim)
        args = [sys.executable, "-m", "watcher", "-c", str(path), "run"]
        child = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
                done = 0
                while done < polls and time.perf_counter() - started < time_limit:
                    if child.poll() is not None:
                        raise RuntimeError(f"watcher run exited with {child.returncode}")
                    done = _polls(http)
                    samples.append((time.perf_counter() - started, rss_kib(child.pid), done))
                    time.sleep(SAMPLE_SECONDS)
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return summarize(samples, watches, every, polls)


def summarize(
    samples: list[tuple[float, int, int]], watches: int, every: int, target: int
) -> dict[str, object]:
    """Start (first sample after the first poll), peak, end, and growth by half."""
    polling = [s for s in samples if s[2] > 0] or samples
    start, end = polling[0], polling[-1]
    middle = min(polling, key=lambda s: abs(s[2] - end[2] / 2))
    first_half = middle[1] - start[1]
    second_half = end[1] - middle[1]
    return {
        "watches": watches,
        "every_seconds": every,
        "polls": end[2],
        "target_polls": target,
        "seconds": round(end[0], 1),
        "rss_mib": {
            "start": round(start[1] / 1024, 1),
            "peak": round(max(s[1] for s in polling) / 1024, 1),
            "end": round(end[1] / 1024, 1),
            "at_half": round(middle[1] / 1024, 1),
        },
        "growth_mib": {
            "first_half": round(first_half / 1024, 1),
            "second_half": round(second_half / 1024, 1),
        },
        "flattens": second_half <= max(first_half * 0.25, 2 * 1024),
        "samples": [(round(t, 1), kib, n) for t, kib, n in samples[:: max(1, len(samples) // 60)]],
    }
