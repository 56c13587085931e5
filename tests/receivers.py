"""Real local receivers for notification tests: HTTP (json, Slack, Telegram) and SMTP.

Each runs on a free loopback port in a background thread and records what arrives, so
tests assert on the receiving end of real apprise plugins, not on mocks::

    with HttpReceiver.json() as rx:
        ...send to rx.url...
        [request] = rx.wait_for(1)

Slack and Telegram are faked by pointing apprise's real plugins at the receiver
(``point_slack_at`` / ``point_telegram_at`` patch the plugin's API base attribute).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer  # noqa: N811  # aiosmtpd's name
from aiosmtpd.smtp import Envelope, Session
from apprise.plugins.slack import NotifySlack
from apprise.plugins.telegram import NotifyTelegram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFAULT_WAIT = 10.0
HOLD_LIMIT = 60.0  # a held request is answered after this even if never released


@dataclass(frozen=True, slots=True)
class Received:
    """One HTTP request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class _Log:
    """Thread-safe list of arrivals with a condition to wait on."""

    items: list[object] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, item: object) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[object]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(f"expected {count} arrivals, got {len(self.items)}")
            return list(self.items)


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _ReadyServer(uvicorn.Server):
    """uvicorn that sets ``ready`` once it listens: after its startup, not from the ASGI
    lifespan (which runs before the socket accepts, so an early request was refused)."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._ready.set()


class HttpReceiver:
    """An HTTP server on loopback that records every request and answers ``ok_body``.

    ``fail_next(n)`` makes the next ``n`` requests get ``status`` (default 500);
    ``hold(after=n)`` leaves every request after the next ``n`` unanswered (recorded on
    arrival) until ``release()``, to catch a sender with a delivery in flight.
    """

    def __init__(self, ok_body: bytes = b"", content_type: str = "text/plain") -> None:
        self.ok_body = ok_body
        self.content_type = content_type
        self._log = _Log()
        self._failures: list[int | None] = []
        self._lock = threading.Lock()
        self._hold_after: int | None = None
        self._gate = threading.Event()
        self._gate.set()
        self._started = threading.Event()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT"])]
        )
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self._server = _ReadyServer(config, self._started)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @classmethod
    def json(cls) -> HttpReceiver:
        """A receiver for apprise's ``json://`` (any 2xx is success)."""
        return cls()

    @classmethod
    def slack(cls) -> HttpReceiver:
        """A fake of Slack's incoming-webhook endpoint (answers ``ok``)."""
        return cls(b"ok")

    @classmethod
    def telegram(cls) -> HttpReceiver:
        """A fake of Telegram's bot API ``sendMessage``."""
        body = json.dumps({"ok": True, "result": {"message_id": 1}}).encode()
        return cls(body, "application/json")

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """An apprise ``json://`` URL that posts here."""
        return f"json://127.0.0.1:{self.port}/"

    @property
    def requests(self) -> list[Received]:
        """Every request so far."""
        return list(self.wait_for(0))

    def fail_next(self, count: int, status: int = 500, *, after: int = 0) -> None:
        """Answer the next ``count`` requests (after ``after`` good ones) with ``status``."""
        with self._lock:
            self._failures.extend([None] * after + [status] * count)

    def hold(self, after: int = 0) -> None:
        """Answer ``after`` more requests, then keep each later one waiting until released."""
        with self._lock:
            self._hold_after = after
            self._gate.clear()

    def release(self) -> None:
        """Answer the held requests and stop holding."""
        with self._lock:
            self._hold_after = None
            self._gate.set()

    def wait_for(self, count: int, timeout: float = DEFAULT_WAIT) -> list[Received]:
        """The first ``count`` (or more) requests, once they have arrived."""
        items = self._log.wait_for(count, timeout)
        return [r for r in items if isinstance(r, Received)]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self._log.add(Received(request.method, request.url.path, dict(request.headers), body))
        with self._lock:
            status = self._failures.pop(0) if self._failures else None
            held = self._hold_after == 0
            if self._hold_after:
                self._hold_after -= 1
        if held:
            await asyncio.to_thread(self._gate.wait, HOLD_LIMIT)
        if status is not None:
            return Response(b'{"ok": false, "description": "injected failure"}', status)
        return Response(self.ok_body, 200, media_type=self.content_type)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        if not self._started.wait(DEFAULT_WAIT):
            raise RuntimeError("HTTP receiver did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        self._server.should_exit = True
        self._thread.join(DEFAULT_WAIT)
        if not self._thread.is_alive():  # closing it under a stopping uvicorn raises there
            self._socket.close()


def point_slack_at(monkeypatch: pytest.MonkeyPatch, receiver: HttpReceiver) -> None:
    """Make apprise's real Slack plugin post its webhooks to ``receiver``."""
    monkeypatch.setattr(NotifySlack, "webhook_url", f"{receiver.base}/services")


def point_telegram_at(monkeypatch: pytest.MonkeyPatch, receiver: HttpReceiver) -> None:
    """Make apprise's real Telegram plugin call ``receiver`` as its bot API."""
    monkeypatch.setattr(NotifyTelegram, "notify_url", f"{receiver.base}/bot")


class _Recorder:
    """aiosmtpd handler that keeps each accepted message."""

    def __init__(self, log: _Log) -> None:
        self._log = log

    async def handle_DATA(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        self._log.add(email.message_from_bytes(raw, policy=email.policy.default))
        return "250 Message accepted"


class SmtpReceiver:
    """A plain SMTP server on loopback (aiosmtpd), recording parsed messages."""

    def __init__(self) -> None:
        self._log = _Log()
        self.port = free_port()
        self._controller = Controller(
            _Recorder(self._log), hostname="127.0.0.1", port=self.port, ready_timeout=10
        )

    def url(self, to: str = "ops@example.com", sender: str = "watcher@example.com") -> str:
        """An apprise ``mailto://`` URL for plain SMTP to this server."""
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from={sender}&to={to}"

    def wait_for(self, count: int, timeout: float = DEFAULT_WAIT) -> list[EmailMessage]:
        """The first ``count`` (or more) messages, once they have arrived."""
        items = self._log.wait_for(count, timeout)
        return [m for m in items if isinstance(m, EmailMessage)]

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = DEFAULT_WAIT) -> None:
    """Poll ``predicate`` until true or the deadline passes (then fail)."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        event.wait(0.01)


__all__ = [
    "HttpReceiver",
    "Received",
    "SmtpReceiver",
    "free_port",
    "point_slack_at",
    "point_telegram_at",
    "wait_until",
]
