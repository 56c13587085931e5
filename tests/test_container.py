"""The container image: the Dockerfile's contract, its build context, and its commands.

No Docker engine runs here, so the Dockerfile is parsed and checked instruction by
instruction, and the commands the image runs (``watcher run``, the HEALTHCHECK) are run
as subprocesses with the image's environment.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.health import Health, HealthServer, Metrics, create_app

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
WATCHER_BIN = Path(sys.executable).parent / "watcher"

Instruction = tuple[str, str]


def _instructions(text: str) -> list[Instruction]:
    """(KEYWORD, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
    return out


def _final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, (k, _) in enumerate(instructions) if k == "FROM"]
    return instructions[starts[-1] :]


def _env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return _instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(instructions: list[Instruction]) -> list[Instruction]:
    return _final_stage(instructions)


def _one(stage: list[Instruction], keyword: str) -> str:
    found = [args for k, args in stage if k == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {found}"
    return found[0]


def test_base_image_is_slim_python_311(instructions: list[Instruction]) -> None:
    """Every stage builds from a slim Python 3.11 image."""
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in instructions if k == "ARG"}
    for keyword, value in instructions:
        if keyword == "FROM":
            image = value.split()[0]
            image = args.get(image.strip("${}"), image)
            assert image.startswith("python:3.11-slim"), image


def test_dependencies_install_from_the_lock_file(instructions: list[Instruction]) -> None:
    """The package installs with `pip install -c constraints.txt .` (the lock file)."""
    runs = [args for k, args in instructions if k == "RUN" and "pip install" in args]
    assert runs
    assert any("-c constraints.txt ." in run for run in runs)
    copies = " ".join(args for k, args in instructions if k == "COPY")
    assert "constraints.txt" in copies
    assert "pyproject.toml" in copies


def test_runs_as_a_non_root_user(final: list[Instruction]) -> None:
    """The image's USER is neither root nor uid 0."""
    user = _one(final, "USER").split(":")[0]
    assert user not in {"root", "0", ""}


def test_state_volume_config_path_and_signals(final: list[Instruction]) -> None:
    """State in the /data volume, config at /config/watches.yaml, SIGTERM stops it."""
    assert "/data" in json.loads(_one(final, "VOLUME"))
    env = _env(final)
    assert env["WATCHER_DB"] == "sqlite:////data/watcher.db"
    assert env["WATCHER_CONFIG"] == "/config/watches.yaml"
    assert _one(final, "STOPSIGNAL") == "SIGTERM"
    assert json.loads(_one(final, "CMD")) == ["watcher", "run"]
    assert _one(final, "WORKDIR") == "/data"


def test_healthcheck_asks_healthz_with_the_stdlib(final: list[Instruction]) -> None:
    """HEALTHCHECK runs python (no curl in slim) against /healthz, with a timeout."""
    check = _one(final, "HEALTHCHECK")
    assert "--timeout=" in check
    command = json.loads(check[check.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    assert "curl" not in check


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins, `!` re-includes."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        candidates = [body, body.replace("**/", "")] if "**/" in body else [body]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            ignored = not negate
    return ignored


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_has_what_the_build_copies(
    instructions: list[Instruction], ignore_patterns: list[str]
) -> None:
    """Every COPY source exists and passes .dockerignore; the package data comes along."""
    for keyword, args in instructions:
        if keyword != "COPY" or "--from=" in args:
            continue
        *sources, _dest = args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not _ignored(source.rstrip("/"), ignore_patterns), source
    for path in ("watcher/templates/new_ad.body.j2", "watcher/store/migrations/env.py"):
        assert (ROOT / path).exists()
        assert not _ignored(path, ignore_patterns), path


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "watcher.db",
        "watcher.db-wal",
        "tests/test_cli.py",
        "watcher/__pycache__/cli.cpython-311.pyc",
        "watches.yaml",
    ],
)
def test_build_context_leaves_out_local_files(path: str, ignore_patterns: list[str]) -> None:
    """The venv, git history, local databases, tests and caches stay out of the image."""
    assert _ignored(path, ignore_patterns)


def _container_env(final: list[Instruction], **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRENDTRACK_", "WATCHER_"))}
    env.update(_env(final))
    env["PATH"] = f"{WATCHER_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env.update(overrides)
    return env


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["--version"]])
async def test_the_image_command_answers(final: list[Instruction], args: list[str]) -> None:
    """The console script the image runs works with the image's environment."""
    command = json.loads(_one(final, "CMD"))
    assert command[0] == "watcher"
    proc = await asyncio.create_subprocess_exec(
        str(WATCHER_BIN),
        *args,
        env=_container_env(final),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out


async def test_status_runs_in_the_image_environment_without_an_api_key(
    final: list[Instruction], tmp_path: Path
) -> None:
    """`watcher status` reads $WATCHER_CONFIG and $WATCHER_DB; no API key needed."""
    config = tmp_path / "watches.yaml"
    config.write_text("version: 1\nwatches:\n  - name: acme\n    hashtag: creatine\n")
    env = _container_env(
        final, WATCHER_CONFIG=str(config), WATCHER_DB=f"sqlite:///{tmp_path / 'watcher.db'}"
    )
    proc = await asyncio.create_subprocess_exec(
        str(WATCHER_BIN),
        "status",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert [w["name"] for w in json.loads(out)["watches"]] == ["acme"]
    assert (tmp_path / "watcher.db").exists()


async def _healthcheck(final: list[Instruction], port: int) -> int:
    check = _one(final, "HEALTHCHECK")
    command = json.loads(check[check.index("CMD") + 3 :])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *command[1:],
        env=_container_env(final, WATCHER_HEALTH_PORT=str(port)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 30)


async def test_healthcheck_command_follows_healthz(final: list[Instruction]) -> None:
    """The HEALTHCHECK command exits 0 on a healthy daemon and non-zero on a 503."""
    health = Health()
    server = HealthServer(create_app(health, Metrics()), "127.0.0.1", 0)
    async with server:
        assert await _healthcheck(final, server.port) != 0
        health.scheduler_running = True
        health.tick(datetime.now(UTC))
        assert await _healthcheck(final, server.port) == 0
    assert await _healthcheck(final, server.port) != 0
