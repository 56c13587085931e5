"""watches.yaml -> frozen, validated :class:`Settings`; the only place env is read.

Reading keeps every key's line (:mod:`watcher.config.yaml_source`), the schema checks each
value (:mod:`watcher.config.schema`), whole-file checks find clashes
(:mod:`watcher.config.checks`), and this module merges ``defaults`` into every watch and
builds plain frozen values the rest of watcher uses without knowing about YAML. Every
problem found is collected and raised at once as one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from watcher.config.build import build_settings
from watcher.config.checks import Report, cross_check
from watcher.config.schema import (
    ConfigModel,
    FirstRun,
    Priority,
    WatchType,
    http_url,
    known_keys,
)
from watcher.config.values import (
    DEFAULT_EVENTS,
    ApiSettings,
    BudgetSettings,
    DeliverySettings,
    HealthSettings,
    Notifier,
    OpsSettings,
    RankJump,
    Settings,
    StateSettings,
    Target,
    TargetKind,
    Watch,
)
from watcher.config.yaml_source import KeyPath, LoadedYaml, hide_expanded, load_yaml
from watcher.errors import ConfigError, ConfigProblem
from watcher.models import KeywordMode, SearchArea, StatusFilter

__all__ = [
    "DEFAULT_EVENTS",
    "ApiSettings",
    "BudgetSettings",
    "DeliverySettings",
    "ExternalChecks",
    "FirstRun",
    "HealthSettings",
    "KeywordMode",
    "Notifier",
    "OpsSettings",
    "Priority",
    "RankJump",
    "SearchArea",
    "Settings",
    "StateSettings",
    "StatusFilter",
    "Target",
    "TargetKind",
    "Watch",
    "WatchType",
    "environment",
    "load_settings",
    "parse_settings",
]


MAX_FILE_BYTES = 1024 * 1024  # a watches.yaml is a few KiB; a bigger file is a mistake


@dataclass(frozen=True, slots=True)
class ExternalChecks:
    """Checks only the libraries that run a config can make, injected from above.

    ``url_problem`` says why the notifier library refuses a URL (or None); ``never_fires``
    says whether the scheduler would never fire a cron expression.
    """

    url_problem: Callable[[str], str | None]
    never_fires: Callable[[str], bool]


def environment() -> dict[str, str]:
    """A snapshot of the process environment: config is the only reader of it."""
    return dict(os.environ)


def load_settings(
    path: Path, env: Mapping[str, str] | None = None, checks: ExternalChecks | None = None
) -> Settings:
    """Read and validate the file at ``path``; ``env`` defaults to ``os.environ``."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            limit = f"{MAX_FILE_BYTES // 1024} KiB"
            raise ConfigError([ConfigProblem(str(path), None, f"larger than {limit}; refused")])
        text = raw.decode("utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([ConfigProblem(str(path), None, f"cannot read: {reason}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(str(path), None, "not UTF-8 text")]) from None
    settings = parse_settings(text, str(path), env, path.parent, checks)
    return dataclasses.replace(settings, source=path)


def parse_settings(
    text: str,
    filename: str,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    checks: ExternalChecks | None = None,
) -> Settings:
    """Validate config ``text``; raise one ``ConfigError`` listing every problem.

    No problem shows a value that came from the environment, nor a URL past its scheme.
    """
    env = os.environ if env is None else env
    loaded = load_yaml(text, filename, env)
    try:
        return _parse(loaded, filename, env, base_dir, checks)
    except ConfigError as exc:
        raise ConfigError(
            [
                dataclasses.replace(p, message=hide_expanded(p.message, loaded.expanded))
                for p in exc.problems
            ]
        ) from None


def _parse(
    loaded: LoadedYaml,
    filename: str,
    env: Mapping[str, str],
    base_dir: Path | None,
    checks: ExternalChecks | None,
) -> Settings:
    problems = list(loaded.problems)

    def report(path: KeyPath, message: str) -> None:
        problems.append(ConfigProblem(filename, loaded.line_for(path), message))

    if loaded.data is None and problems:
        raise ConfigError(problems)
    if not isinstance(loaded.data, dict):
        report((), "the file must be a mapping that starts with `version: 1`")
        raise ConfigError(problems)

    def report_at(path: KeyPath, message: str) -> None:
        where = _where(path, loaded)
        report(path, f"{where}: {message}" if where else message)

    cross_check(loaded, report_at)
    model: ConfigModel | None = None
    try:
        model = ConfigModel.model_validate(loaded.data)
    except ValidationError as exc:
        for error in exc.errors():
            path = _key_path(loaded, error["loc"])
            report(path, _message(error, path, loaded))
    base_url, database, health = _env_overrides(model, env, filename, problems)
    if model is None or problems:
        raise ConfigError(_ordered(problems))
    if checks is not None:
        _external_checks(model, checks, report_at)
    settings = build_settings(
        model, env, base_url, database, health, base_dir or Path.cwd(), report_at
    )
    if problems:
        raise ConfigError(_ordered(problems))
    return settings


def _external_checks(model: ConfigModel, checks: ExternalChecks, report: Report) -> None:
    for name, notifier in model.notifiers.items():
        for index, url in enumerate(notifier.urls):
            problem = checks.url_problem(url.get_secret_value())
            if problem:
                report(("notifiers", name, "urls", index), problem)
    crons: list[tuple[KeyPath, str | None]] = [(("defaults", "cron"), model.defaults.cron)]
    crons += [(("watches", i, "cron"), w.cron) for i, w in enumerate(model.watches)]
    for path, expr in crons:
        if expr is not None and checks.never_fires(expr):
            report(path, f"cron {expr!r} never fires (no date matches it)")


def _ordered(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line is None, p.line or 0))


def _env_overrides(
    model: ConfigModel | None, env: Mapping[str, str], filename: str, problems: list[ConfigProblem]
) -> tuple[str, str, HealthSettings]:
    """The environment's overrides: ``TRENDTRACK_BASE_URL``, ``WATCHER_DB`` and
    ``WATCHER_HEALTH_PORT`` / ``WATCHER_HEALTH_HOST`` (the container serves ``/healthz``
    without the user's file saying so)."""
    base_url = env.get("TRENDTRACK_BASE_URL") or (model.api.base_url if model else "")
    if env.get("TRENDTRACK_BASE_URL"):
        try:
            base_url = http_url(base_url)
        except ValueError as exc:
            problems.append(ConfigProblem(filename, None, f"TRENDTRACK_BASE_URL: {exc}"))
    database = env.get("WATCHER_DB") or (model.state.database if model else "")
    port = model.health.port if model else None
    if env.get("WATCHER_HEALTH_PORT"):
        raw = env["WATCHER_HEALTH_PORT"].strip()
        if raw.isdigit() and 1 <= int(raw) <= 65535:
            port = int(raw)
        else:
            message = f"WATCHER_HEALTH_PORT: should be a port number (1-65535), not {raw!r}"
            problems.append(ConfigProblem(filename, None, message))
    host = env.get("WATCHER_HEALTH_HOST") or (model.health.host if model else "127.0.0.1")
    token = model.health.token if model else None
    if token is not None and not token.get_secret_value().strip():
        token = None  # an empty ${VAR} is no token, never a token that anything matches
    return base_url, database_url(database), HealthSettings(port, host, token)


def database_url(value: str) -> str:
    """A URL as is; a bare path becomes a SQLite URL (relative paths stay relative)."""
    return value if "://" in value else f"sqlite:///{value}"


def _key_path(loaded: LoadedYaml, loc: tuple[str | int, ...]) -> KeyPath:
    path: KeyPath = ()
    for part in loc:
        if (*path, part) in loaded.lines:
            path = (*path, part)
    return path


def _where(path: KeyPath, loaded: LoadedYaml) -> str:
    """``watch 'gummies': every`` or ``api.max_concurrency`` for messages."""
    data = loaded.data
    prefix = ""
    rest = path
    if len(path) >= 2 and path[0] == "watches" and isinstance(path[1], int):
        watches = data.get("watches") if isinstance(data, dict) else None
        item = watches[path[1]] if isinstance(watches, list) else None
        name = item.get("name") if isinstance(item, dict) else None
        prefix = f"watch {name!r}" if isinstance(name, str) else f"watches[{path[1]}]"
        rest = path[2:]
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
    return ": ".join(p for p in (prefix, dotted) if p)


def _message(error: ErrorDetails, path: KeyPath, loaded: LoadedYaml) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        hints = difflib.get_close_matches(key, known_keys(), n=1, cutoff=0.75)
        hint = f" (did you mean {hints[0]!r}?)" if hints else ""
        where = _where(path[:-1], loaded)
        return f"{where + ': ' if where else ''}unknown key {key!r}{hint}"
    if kind == "missing":
        where = _where(path, loaded)
        return f"{where + ': ' if where else ''}missing required key {error['loc'][-1]!r}"
    message = error["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "should be")
    if kind in ("literal_error", "enum"):
        message += f", not {error['input']!r}"
    where = _where(path, loaded)
    return f"{where}: {message}" if where else message
