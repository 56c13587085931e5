"""``make bench`` (``python -m bench``): every benchmark, a Markdown table, a JSON file.

The credit runs (``bench.credits.RUNS``: both API modes on the reference workload, then
the large-scope workload twice) and the memory run don't depend on timing, so they run
side by side first (child processes and a sampled ``watcher run``; the large-scope runs
start when the memory run is done, so at most three share the two cores); the timed ones
(throughput, latency, scale) then run alone. Results go to ``bench/results.json``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import latency, memory, scale, throughput
from bench.report import table
from bench.sim import ROOT

RESULTS = Path(__file__).resolve().parent / "results.json"
FIRST = ("chosen", "documented-only")
AFTER_MEMORY = ("large", "large-unstable")


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _machine() -> dict[str, object]:
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "uncommitted": _git("status", "--porcelain", "--untracked-files=no").splitlines(),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


REPLICA_RESULTS = Path(__file__).resolve().parent / "results-replicas.json"


def replicas_table(runs: list[dict[str, object]]) -> str:
    """The Markdown table of ``python -m bench replicas``."""
    lines = [
        "| replicas | polls/s | due/s | demand | lag p50 / p99 | takeover | failover p50 / max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lag = r["lag_seconds"]
        assert isinstance(lag, dict)
        fail = r.get("failover_seconds")
        failover = f"{fail['p50']} s / {fail['max']} s" if isinstance(fail, dict) else "-"
        takeover = f"{r['takeover_seconds']} s" if "takeover_seconds" in r else "-"
        lines.append(
            f"| {r['replicas']} | {r['polls_per_second']} | {r.get('due_per_second', '-')} "
            f"| {r['demand_polls_per_second']} ({r.get('demand_with_jitter', '-')}) "
            f"| {lag['p50']} s / {lag['p99']} s | {takeover} | {failover} |"
        )
    return "\n".join(lines)


def main_replicas() -> None:
    """``python -m bench replicas``: 10,000 watches on 1, 2 and 3 replicas (minutes)."""
    from bench import replicas  # noqa: PLC0415

    _progress("replicas: 10,000 watches on 1, 2 and 3 replicas sharing one PostgreSQL")
    runs = replicas.run()
    results = {"machine": _machine(), "replicas": runs, "table": replicas_table(runs)}
    REPLICA_RESULTS.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    print(results["table"])
    print(f"\nresults: {REPLICA_RESULTS.relative_to(ROOT)}")


def main() -> None:
    if sys.argv[1:] == ["replicas"]:
        main_replicas()
        return
    started = time.perf_counter()
    results: dict[str, object] = {"machine": _machine()}
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
        outs = {run: Path(folder) / f"{run}.json" for run in (*FIRST, *AFTER_MEMORY)}
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def start(run: str) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "bench.credits", run, str(outs[run])], cwd=ROOT, env=env
            )

        children = {run: start(run) for run in FIRST}
        _progress(f"credits ({', '.join(FIRST)}) and memory, side by side")
        results["memory"] = memory.run()
        _progress(f"memory done; credits ({', '.join(AFTER_MEMORY)}) start")
        children.update({run: start(run) for run in AFTER_MEMORY})
        for run, child in children.items():
            if child.wait() != 0:
                raise SystemExit(f"the {run} credit run failed ({child.returncode})")
            _progress(f"credits {run} done")
        results["credits"] = [json.loads(outs[run].read_text("utf-8")) for run in children]
    _progress("throughput")
    results["throughput"] = throughput.run()
    _progress("latency")
    results["latency"] = latency.run()
    _progress("scale")
    results["scale"] = scale.run()
    results["seconds"] = round(time.perf_counter() - started, 1)
    text = table(results)
    results["table"] = text
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", "utf-8")
    print(text)
    print(f"\nresults: {RESULTS.relative_to(ROOT)} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
