"""Logging for a daemon that runs for months: readable lines or JSON lines, never a secret.

:func:`setup_logging` installs one handler on the root logger (stderr, looked up at each
write so a swapped ``sys.stderr`` is honoured) with a :class:`RedactFilter` in front of
its formatter. The filter scrubs what commonly leaks into log lines: credentials in URLs
(``scheme://user:pass@``, token query parameters, webhook paths, whole Apprise URLs),
``Bearer`` tokens, TrendTrack keys (``tt_live_…``, ``tt_sim_…``) and every value given to
:func:`register_secret` (the CLI registers the API key and the notifier URLs).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Literal, TextIO
from urllib.parse import parse_qsl, quote, unquote, urlsplit

LogFormat = Literal["text", "json"]

MASK = "***"

NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "apscheduler",
    "apprise",
    "uvicorn.access",
    "alembic",
    "watchfiles",
)
"""Libraries whose INFO lines are chatter for an operator; WARNING unless ``--verbose``."""

_SAFE_SCHEMES = frozenset({"http", "https", "sqlite", "postgresql", "postgres", "file"})
_WEBHOOK_HOSTS = (
    "hooks.slack.com",
    "discord.com/api/webhooks",
    "discordapp.com/api/webhooks",
    "api.telegram.org",
    "outlook.office.com/webhook",
    "webhook.office.com",
)

# Order matters: whole Apprise URLs first, then credentials inside the URLs that remain.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b(?P<scheme>(?!(?:"
            + "|".join(sorted(_SAFE_SCHEMES))
            + r")(?:\+\w+)?://)[a-zA-Z][a-zA-Z0-9+.-]*)"
            r"://[^\s'\"<>]+"
        ),
        rf"\g<scheme>://{MASK}",
    ),
    (
        re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@:'\"<>]+:[^\s/@'\"<>]*@"),
        rf"\g<scheme>{MASK}@",
    ),
    (
        re.compile(
            r"(?P<host>https?://(?:" + "|".join(re.escape(h) for h in _WEBHOOK_HOSTS) + r"))"
            r"/[^\s'\"<>]*"
        ),
        rf"\g<host>/{MASK}",
    ),
    (
        re.compile(
            r"(?P<key>[?&](?:[a-z_]*token|[a-z_]*key|secret|password|passwd|pass|sig|"
            r"signature|auth|code)=)[^&\s'\"<>#]+",
            re.IGNORECASE,
        ),
        rf"\g<key>{MASK}",
    ),
    (re.compile(r"(?P<kind>\bBearer\s+)[^\s'\",]+", re.IGNORECASE), rf"\g<kind>{MASK}"),
    (
        re.compile(
            r"(?P<name>\b(?:authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)[^\s'\",}]+", re.I
        ),
        rf"\g<name>{MASK}",
    ),
    (re.compile(r"\btt_(?:live|sim|test)_[A-Za-z0-9_-]+"), f"tt_{MASK}"),
)

_MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words
_secrets: set[str] = set()
_secrets_re: re.Pattern[str] | None = None
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never log ``value`` (nor its URL-quoted form); too-short values are ignored."""
    if not value or len(value) < _MIN_SECRET_LENGTH or value in _secrets:
        return
    global _secrets_re  # noqa: PLW0603 - one process-wide registry, like logging's own
    with _secrets_lock:
        _secrets.update({value, quote(value, safe="")})
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_re = re.compile("|".join(re.escape(s) for s in ordered))


def register_secrets(values: Iterable[str | None]) -> None:
    """``register_secret`` for each value (e.g. the API key and every notifier URL)."""
    for value in values:
        register_secret(value)


_MIN_URL_PART_LENGTH = 8  # a URL's short parts are words (``hook``, ``ops``), not tokens
_public: set[str] = set()


def register_public_names(names: Iterable[str]) -> None:
    """Names the config gives in the clear (notifiers, watches): a URL part equal to one
    is no credential, so ``json://host/marketing`` leaves the notifier ``marketing``
    readable in every log line (the whole URL stays masked)."""
    with _secrets_lock:
        _public.update(names)


def url_secrets(url: str) -> list[str]:
    """The URL and every part of it that may be a credential (user, password, a host that
    is no domain or address, path segments, query values): apprise URLs carry tokens in
    any of them (``tgram://BOT:TOKEN/chat``, ``slack://A/B/C``)."""
    try:
        parts = urlsplit(url)
        netloc = [p for p in re.split(r"[:@]", unquote(parts.netloc)) if "." not in p]
        candidates = [p for p in netloc if p != "localhost"]
        candidates += unquote(parts.path).split("/")
        candidates += [value for _, value in parse_qsl(parts.query)]
    except ValueError:
        return [url]
    return [
        url,
        *(c for c in candidates if len(c) >= _MIN_URL_PART_LENGTH and c not in _public),
    ]


def register_url(url: str) -> None:
    """``register_secret`` for a notifier URL and each of its credential-like parts."""
    register_secrets(url_secrets(url))


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secrets_re  # noqa: PLW0603 - see register_secret
    with _secrets_lock:
        _secrets.clear()
        _public.clear()
        _secrets_re = None


def redact(text: str) -> str:
    """``text`` with registered secrets and secret-looking values replaced by ``***``."""
    registered = _secrets_re
    if registered is not None:
        text = registered.sub(MASK, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The ``extra=`` fields a call passed (watch, outcome, credits, ...)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


class RedactFilter(logging.Filter):
    """Rewrites each record so no secret reaches a formatter: message, extras, traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, _scrub(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """``2025-01-31 09:00:00 INFO watcher.run: message``, local to the reader."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``msg``, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, _scrub(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(record.stack_info)
        return json.dumps(entry, default=lambda v: redact(str(v)), ensure_ascii=False)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (click and pytest swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(
    fmt: LogFormat | str = "text", verbose: bool = False, *, quiet: bool = False
) -> logging.Handler:
    """Route every log record through one redacting handler on stderr; idempotent.

    ``fmt`` is ``text`` (for people) or ``json`` (JSON lines for log shippers);
    ``verbose`` logs debug detail, the libraries' included. ``quiet`` is for one-shot
    commands that print their own report on stdout: only warnings (and only the
    libraries' errors, which the report already covers) reach stderr.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}: text or json")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    if verbose:
        root_level, library_level = logging.DEBUG, logging.NOTSET
    elif quiet:
        root_level, library_level = logging.WARNING, logging.ERROR
    else:
        root_level, library_level = logging.INFO, logging.WARNING
    root.setLevel(root_level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
    return handler
