"""Reading watches.yaml: YAML 1.2 text -> plain data, the line of every key, ``${VAR}``.

The only ruamel.yaml user. The result is plain ``dict``/``list``/scalars, so validation
never sees YAML types, plus a map from each key path (``("watches", 2, "every")``) to its
1-based line, so every later problem can name a line. Environment variables are expanded
here, in string values only (never keys), with the line of the value they came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeAlias

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from watcher.errors import ConfigProblem

KeyPath: TypeAlias = tuple[str | int, ...]
Plain: TypeAlias = "dict[object, Plain] | list[Plain] | str | int | float | bool | None"

# $$ | ${NAME} | ${NAME:-default} | ${ unterminated
_VARIABLE = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<body>[^}]*)(?P<close>\}|$))")
_REFERENCE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
_DUPLICATE_KEY = re.compile(r'found duplicate key "(?P<key>.*?)" with value')
# Values the document may expand to: aliases make a few lines name billions of values
# (a "billion laughs" file); a real watches.yaml has a few thousand at most.
MAX_NODES = 100_000


class _TooManyNodes(Exception):
    """The document expands past ``MAX_NODES`` values."""


@dataclass(slots=True)
class LoadedYaml:
    """Plain data, the line of each key path, and the problems met while reading."""

    data: Plain
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    nodes: int = 0
    # Every value a ``${VAR}`` expanded to: it may be a secret, so no message shows it.
    expanded: set[str] = field(default_factory=set)

    def line_for(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest known prefix of ``loc``.

        Parts that are not keys of the document (pydantic's union tags such as
        ``function-after[...]``) are skipped.
        """
        path: KeyPath = ()
        best = self.lines.get(())
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path = candidate
                best = self.lines[candidate]
        return best


def load_yaml(text: str, filename: str, env: Mapping[str, str]) -> LoadedYaml:
    """Parse ``text``; syntax errors come back as problems, never as exceptions."""
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except DuplicateKeyError as exc:
        match = _DUPLICATE_KEY.search(str(exc.problem))
        key = match.group("key") if match else "?"
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        # ruamel's message quotes both values, which may be secrets: name the key only.
        return LoadedYaml(None, problems=[ConfigProblem(filename, line, f"duplicate key {key!r}")])
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        message = f"YAML syntax error: {what}"
        if exc.context and exc.problem:
            message += f" ({exc.context})"
        return LoadedYaml(None, problems=[ConfigProblem(filename, line, message)])
    except YAMLError as exc:
        return LoadedYaml(None, problems=[ConfigProblem(filename, None, f"invalid YAML: {exc}")])
    loaded = LoadedYaml(None)
    root_line = document.lc.line + 1 if isinstance(document, CommentedMap | CommentedSeq) else 1
    loaded.lines[()] = root_line
    try:
        loaded.data = _plain(document, (), root_line, loaded, filename, env)
    except _TooManyNodes:
        message = (
            f"the document expands to more than {MAX_NODES:,} values "
            "(YAML aliases repeated inside aliases?); refused"
        )
        return LoadedYaml(None, problems=[ConfigProblem(filename, None, message)])
    return loaded


def _key_line(node: CommentedMap, key: object, fallback: int) -> int:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (KeyError, TypeError, AttributeError):  # merged (<<) keys carry no position
        return fallback


def _item_line(node: CommentedSeq, index: int, fallback: int) -> int:
    try:
        return int(node.lc.item(index)[0]) + 1
    except (KeyError, TypeError, AttributeError):
        return fallback


def _plain(
    node: object,
    path: KeyPath,
    line: int,
    loaded: LoadedYaml,
    filename: str,
    env: Mapping[str, str],
) -> Plain:
    loaded.nodes += 1
    if loaded.nodes > MAX_NODES:
        raise _TooManyNodes
    if isinstance(node, CommentedMap):
        mapping: dict[object, Plain] = {}
        for raw_key in node:
            key = _scalar_key(raw_key)
            key_line = _key_line(node, raw_key, line)
            key_path = (*path, key if isinstance(key, str | int) else str(key))
            loaded.lines[key_path] = key_line
            mapping[key] = _plain(node[raw_key], key_path, key_line, loaded, filename, env)
        return mapping
    if isinstance(node, CommentedSeq):
        items: list[Plain] = []
        for index, value in enumerate(node):
            item_line = _item_line(node, index, line)
            loaded.lines[(*path, index)] = item_line
            items.append(_plain(value, (*path, index), item_line, loaded, filename, env))
        return items
    if isinstance(node, str):
        return expand(
            str(node),
            env,
            lambda m: loaded.problems.append(_at(filename, line, m)),
            loaded.expanded,
        )
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime | date):
        return node.isoformat()
    return str(node)


_ANY_URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://(?!\.\.\.)[^\s'\"]+", re.IGNORECASE)


def hide_expanded(message: str, expanded: set[str]) -> str:
    """``message`` with every ``${VAR}`` value and every URL's body replaced by ``***``.

    Notifier URLs carry tokens in their paths as well as their passwords, so no URL is
    shown past its scheme; the line number in the message says where it is.
    """
    for value in sorted(expanded, key=len, reverse=True):
        if len(value) >= 3:
            message = message.replace(value, "***")
    return _ANY_URL.sub(lambda m: m.group(1) + "://***", message)


def _scalar_key(key: object) -> object:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool) or key is None:
        return key
    if isinstance(key, int):
        return int(key)
    return str(key)


def _at(filename: str, line: int, message: str) -> ConfigProblem:
    return ConfigProblem(filename, line, message)


def expand(
    value: str,
    env: Mapping[str, str],
    report: Callable[[str], None],
    expanded: set[str] | None = None,
) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` and ``$$`` in ``value``.

    A variable that is unset (or empty, with a default given) takes the default; unset
    without a default is reported and expands to an empty string. Problems name the
    variable, never the value; values taken from ``env`` are added to ``expanded``.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group("dollar"):
            return "$"
        body = match.group("body")
        if not match.group("close"):
            report(f"unterminated variable reference '${{{body}' (missing '}}')")
            return ""
        reference = _REFERENCE.fullmatch(body)
        if not reference:
            report(f"bad variable reference '${{{body}}}': write ${{NAME}} or ${{NAME:-default}}")
            return ""
        name, default = reference.group("name"), reference.group("default")
        current = env.get(name)
        if default is not None:
            chosen = current if current else default
            if expanded is not None and current:
                expanded.add(current)
            return chosen
        if expanded is not None and current:
            expanded.add(current)
        if current is None:
            report(
                f"environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}} for a fallback)"
            )
            return ""
        return current

    return _VARIABLE.sub(substitute, value)
