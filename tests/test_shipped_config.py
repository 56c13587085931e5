"""The shipped watches.yaml works out of the box against the bundled simulator.

Runs the real command line (``python -m watcher``) as a user would, on a copy of the
repository's ``watches.yaml``, against the default world ``watcher simulate`` serves
(seed 1): ``check`` passes, and ``once`` baselines every watch, then polls every watch
``ok`` after a refresh. Notifiers point at a closed port: deliveries fail, which must not
make ``once`` fail (only a failed poll does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from watcher.simulator.testing import SimHandle, running_simulator

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "watches.yaml"
OUTCOME = re.compile(r"^(?P<watch>[\w.-]+): (?P<outcome>\w+), (?P<events>\d+) events?", re.M)
UNREACHABLE = "json://127.0.0.1:9/"


def _watch_names() -> list[str]:
    config = yaml.safe_load(SHIPPED.read_text("utf-8"))
    return [str(watch["name"]) for watch in config["watches"]]


def _cli(sim: SimHandle, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHER_", "TRENDTRACK_"))}
    env |= {
        "TRENDTRACK_BASE_URL": sim.base_url,
        "TRENDTRACK_API_KEY": sim.api_key,
        "WATCHER_DB": str(config.parent / "watcher.db"),
        "MARKETING_URL": UNREACHABLE,
        "OPS_URL": UNREACHABLE,
    }
    return subprocess.run(
        [sys.executable, "-m", "watcher", "-c", str(config), *args],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _outcomes(stdout: str) -> dict[str, str]:
    return {m["watch"]: m["outcome"] for m in OUTCOME.finditer(stdout)}


def test_shipped_config_checks_and_polls_the_default_simulator(tmp_path: Path) -> None:
    """check exits 0; once: every watch baseline, then after a refresh every watch ok."""
    config = tmp_path / "watches.yaml"
    shutil.copyfile(SHIPPED, config)
    names = _watch_names()
    assert len(names) == 5
    with running_simulator() as sim:
        checked = _cli(sim, config, "check")
        assert checked.returncode == 0, checked.stderr
        for name in names:
            assert name in checked.stdout

        first = _cli(sim, config, "once")
        assert first.returncode == 0, first.stdout + first.stderr
        assert _outcomes(first.stdout) == dict.fromkeys(names, "baseline"), first.stdout

        sim.advance_days(1)
        second = _cli(sim, config, "once")
        assert second.returncode == 0, second.stdout + second.stderr
        assert _outcomes(second.stdout) == dict.fromkeys(names, "ok"), second.stdout

    written = {path.name for path in tmp_path.iterdir()}
    assert "watcher.db" in written, "WATCHER_DB overrides state.database"
    sqlite = {"watcher.db", "watcher.db-wal", "watcher.db-shm"}
    assert written <= {"watches.yaml", "watcher.db.sent", *sqlite}  # .sent: the send journal
