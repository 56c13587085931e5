"""Delivery of rendered messages through apprise; the only apprise user.

One ``apprise.Apprise`` per URL, so every URL gets its own result. Results and logs name
a URL by its position and scheme only: notifier URLs carry tokens and passwords. apprise's
own logger (and urllib3's, which logs request paths) is kept at WARNING, and every record
they emit passes through ``hide_urls``.

What we hand apprise per channel (see ``watcher.render`` for what our escaping already did):

- Slack: ``markdown``; apprise converts CommonMark to mrkdwn and entity-escapes ``&<>``.
- Telegram: ``html``; apprise reduces it to Telegram's tags (parse_mode HTML). apprise
  inserts the title into the HTML body unescaped, so we escape the title here, once.
- email: ``html``; apprise sends multipart/alternative with a plain part made from it.
- everything else: the message's own format.

``console://`` is ours: it prints the message to stdout (``watcher demo``).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import apprise

with warnings.catch_warnings():
    # apprise's PGP helper imports the stdlib ``imghdr`` (deprecated since 3.11, shimmed
    # by apprise for 3.13); import it once here, quietly, instead of on the first send.
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    import apprise.utils.pgp

from watcher.channels import scheme_of
from watcher.logs import redact, register_url
from watcher.render import Message

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
CONSOLE_SCHEME = "console"
_MAX_ERROR = 200
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one message fared at one URL; ``error`` never holds the URL or a secret."""

    ok: bool
    error: str | None
    duration: float


@dataclass(frozen=True, slots=True)
class UrlResult:
    """How a notifier's URL at ``index`` fared with all its messages.

    ``sent`` messages were accepted before the first failure (``error``); sending stops
    at the first failure so a retry can resume in order.
    """

    index: int
    scheme: str
    ok: bool
    error: str | None
    sent: int
    total: int
    duration: float


# --- keeping secrets out of logs -----------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why apprise refuses notifier ``url`` (naming its scheme only), or None if it won't."""
    if scheme_of(url) == CONSOLE_SCHEME:
        return None
    asset = apprise.AppriseAsset(storage_mode="memory")
    if apprise.Apprise.instantiate(url, asset=asset) is not None:
        return None
    return (
        f"apprise does not accept this {scheme_of(url)}:// URL "
        "(an unknown scheme, or a token, host or target missing or malformed)"
    )


def hide_urls(text: str) -> str:
    """``text`` without any URL (its scheme stays) and without any registered secret, such
    as a credential seen in a notifier URL (``logs.register_url``)."""
    return redact(_URL.sub(lambda m: m.group(0).split("://", 1)[0] + "://***", text))


class _RedactingFilter(logging.Filter):
    """Rewrites apprise's log records so no URL or credential reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = hide_urls(record.getMessage())
        record.args = None
        return True


def _quiet_apprise() -> None:
    # urllib3 (under requests, under apprise) logs request paths, tokens included, at DEBUG.
    for name in ("apprise", "urllib3"):
        library_log = logging.getLogger(name)
        library_log.setLevel(logging.WARNING)
        if not any(isinstance(f, _RedactingFilter) for f in library_log.filters):
            library_log.addFilter(_RedactingFilter())


_quiet_apprise()


# --- sending -------------------------------------------------------------------------


def _reason(result: object) -> str:
    """A short, redacted reason from an apprise result's captured warnings."""
    status = getattr(result, "status", None)
    if status is not None and getattr(status, "name", "") == "TIMEOUT":
        return "timed out"
    messages = [
        entry.message
        for entry in getattr(result, "logs", list)()
        if entry.level in ("WARNING", "ERROR", "CRITICAL")
    ]
    reason = hide_urls(messages[-1]) if messages else "the service did not accept the message"
    return reason[:_MAX_ERROR]


def _apprise_arguments(url: str, message: Message) -> dict[str, str]:
    title = message.title
    if scheme_of(url) == "tgram" and message.format == "html":
        title = html.escape(title, quote=False)
    return {"title": title, "body": message.body, "body_format": message.format}


async def send(
    url: str,
    message: Message,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109  # apprise's own per-call deadline
) -> SendResult:
    """Send ``message`` to one notifier URL; never raises for a delivery problem."""
    started = time.monotonic()
    if scheme_of(url) == CONSOLE_SCHEME:
        sys.stdout.write(f"{message.title}\n{message.body}\n\n")
        sys.stdout.flush()
        return SendResult(True, None, time.monotonic() - started)
    register_url(url)
    asset = apprise.AppriseAsset(storage_mode="memory")
    apobj = apprise.Apprise(asset=asset)
    if not apobj.add(url):
        error = f"not a valid {scheme_of(url)}:// notifier URL"
        return SendResult(False, error, time.monotonic() - started)
    try:
        result = await apobj.async_notify(**_apprise_arguments(url, message), timeout=timeout)
    except Exception as exc:  # noqa: BLE001  # a plugin bug must not take the caller down
        error = hide_urls(f"{type(exc).__name__}: {exc}")[:_MAX_ERROR]
        return SendResult(False, error, time.monotonic() - started)
    duration = time.monotonic() - started
    if result:
        return SendResult(True, None, duration)
    return SendResult(False, _reason(result), duration)


async def send_all(
    url: str,
    messages: Sequence[Message],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109  # passed on to send()
) -> tuple[int, SendResult]:
    """Send ``messages`` in order to one URL, stopping at the first failure."""
    started = time.monotonic()
    for sent, message in enumerate(messages):
        result = await send(url, message, timeout=timeout)
        if not result.ok:
            error = result.error if len(messages) == 1 else f"part {sent + 1}: {result.error}"
            return sent, SendResult(False, error, time.monotonic() - started)
    return len(messages), SendResult(True, None, time.monotonic() - started)


async def send_to_notifier(
    urls: Sequence[str],
    message_for_url: Callable[[str], Sequence[Message]],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109  # passed on to send()
) -> list[UrlResult]:
    """Send each URL its messages, concurrently; one result per URL, by position."""

    async def one(index: int, url: str) -> UrlResult:
        messages = list(message_for_url(url))
        sent, result = await send_all(url, messages, timeout=timeout)
        outcome = "ok" if result.ok else f"failed ({result.error})"
        log.info("notifier url %d (%s): %s", index, scheme_of(url), outcome)
        return UrlResult(
            index, scheme_of(url), result.ok, result.error, sent, len(messages), result.duration
        )

    return list(await asyncio.gather(*(one(i, url) for i, url in enumerate(urls))))
