"""``make bench`` (``python -m bench``): every benchmark, a Markdown table, a JSON file.

The credit runs (both API modes) and the memory run don't depend on timing, so they run
side by side first (two child processes and a sampled ``watcher run``); the timed ones
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
MODES = ("chosen", "documented-only")


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _machine() -> dict[str, object]:
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted": _git("status", "--porcelain", "--untracked-files=no").splitlines(),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def main() -> None:
    started = time.perf_counter()
    results: dict[str, object] = {"machine": _machine()}
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as folder:
        outs = {mode: Path(folder) / f"{mode}.json" for mode in MODES}
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        children = {
            mode: subprocess.Popen(
                [sys.executable, "-m", "bench.credits", mode, str(outs[mode])], cwd=ROOT, env=env
            )
            for mode in MODES
        }
        _progress("credits (both API modes) and memory, side by side")
        results["memory"] = memory.run()
        _progress("memory done; waiting for the credit runs")
        for mode, child in children.items():
            if child.wait() != 0:
                raise SystemExit(f"the {mode} credit run failed ({child.returncode})")
        results["credits"] = [json.loads(outs[mode].read_text("utf-8")) for mode in MODES]
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
