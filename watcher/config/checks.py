"""Checks of watches.yaml that need the whole file, run on the plain data.

They run whether or not the per-field schema passed, so one pass reports a bad duration
in one watch *and* an unknown notifier in another. Shapes the schema rejects (a list
where a mapping belongs) are skipped here: the schema already reports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from watcher.config.schema import TARGET_KEYS
from watcher.config.yaml_source import KeyPath, LoadedYaml, Plain

Report = Callable[[KeyPath, str], None]


def cross_check(loaded: LoadedYaml, report: Report) -> None:
    """Report duplicate watch names, target counts, schedule clashes, unknown notifiers.

    ``report`` takes the key path and a message; the caller adds the location.
    """
    root = loaded.data
    if not isinstance(root, dict):
        return
    notifiers = root.get("notifiers")
    names = {str(k) for k in notifiers} if isinstance(notifiers, dict) else set()

    defaults = root.get("defaults")
    if isinstance(defaults, dict):
        _check_schedule(defaults, ("defaults",), report)
        _check_names(defaults.get("notify"), ("defaults", "notify"), names, report)
    _check_names(root.get("ops_notify"), ("ops_notify",), names, report)
    route = root.get("route")
    if isinstance(route, dict):
        for kind, targets in route.items():
            if isinstance(kind, str):
                _check_names(targets, ("route", kind), names, report)

    seen: dict[str, int | None] = {}
    for index, watch in _watches(root):
        path: KeyPath = ("watches", index)
        name = watch.get("name")
        if isinstance(name, str):
            if name in seen:
                first = seen[name]
                where = f" (first defined at line {first})" if first else ""
                report((*path, "name"), f"duplicate watch name {name!r}{where}")
            else:
                seen[name] = loaded.lines.get((*path, "name"))
        _check_target(watch, path, report)
        _check_schedule(watch, path, report)
        _check_names(watch.get("notify"), (*path, "notify"), names, report)


def _watches(root: dict[object, Plain]) -> Iterator[tuple[int, dict[object, Plain]]]:
    watches = root.get("watches")
    if isinstance(watches, list):
        for index, watch in enumerate(watches):
            if isinstance(watch, dict):
                yield index, watch


def _check_target(watch: dict[object, Plain], path: KeyPath, report: Report) -> None:
    present = [key for key in TARGET_KEYS if key in watch]
    if not present:
        report(path, "needs exactly one target: one of shop, hashtag, handle, search, query")
    for extra in present[1:]:
        report((*path, extra), f"several targets ({', '.join(present)}): keep exactly one")
    for key in ("search_area", "keyword_mode"):
        if key in watch and present and "search" not in present:
            report((*path, key), f"{key} only applies to a search watch")


def _check_schedule(options: dict[object, Plain], path: KeyPath, report: Report) -> None:
    if "every" in options and "cron" in options:
        report((*path, "cron"), "set either every or cron, not both")


def _check_names(value: Plain, path: KeyPath, names: set[str], report: Report) -> None:
    defined = ", ".join(sorted(names)) or "none"
    if isinstance(value, str):
        value_paths: list[tuple[KeyPath, Plain]] = [(path, value)]
    elif isinstance(value, list):
        value_paths = [((*path, index), name) for index, name in enumerate(value)]
    else:
        return
    for where, name in value_paths:
        if isinstance(name, str) and name not in names:
            report(where, f"unknown notifier {name!r} (defined: {defined})")
