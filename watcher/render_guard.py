"""User templates rendered in a child process, under a deadline and a memory limit.

Templates are code the user writes: ``{% for i in range(100000) %}`` nested twice runs
for hours, ``{{ 'x' * 10**9 }}`` takes a gigabyte, and neither raises anything the sandbox
could catch in time. ``GuardedRenderer`` has the interface of ``render.Renderer`` and runs
it in one long-lived child process (started from a fork server, so the daemon's threads
are never forked). A call that takes longer than ``timeout`` seconds kills the child
(the next call starts a new one); a child that dies, or runs out of its address-space
limit, is the same: the call raises ``TemplateError``, which fails the messages that
needed it and nothing else. Calls block their thread, never the event loop: the outbox
calls in through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import threading
import weakref
from collections.abc import Iterable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from watcher.channels import Channel
from watcher.errors import TemplateError
from watcher.models import Event, EventKind
from watcher.render import DEFAULT_DIGEST_THRESHOLD, DEFAULT_MAX_CHARS, Message, Renderer

RENDER_TIMEOUT = 5.0  # seconds for one message (or one digest)
VALIDATE_TIMEOUT = 10.0  # seconds for every template in every format (``check``)
MEMORY_BUDGET = 256 * 1024 * 1024  # bytes a child may map beyond what it starts with
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["watcher.render"])


def _limit_memory(budget: int) -> None:
    """Cap the child's address space at its current size plus ``budget`` (Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return
    limit = pages * os.sysconf("SC_PAGE_SIZE") + budget
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _serve(
    conn: Connection,
    templates_dir: Path | None,
    max_chars: int,
    digest_threshold: int,
    budget: int,
) -> None:
    """The child: answer ``(method, args)`` requests with ``("ok", value)``/``("error", text)``.

    Ctrl-C reaches the whole process group; the parent decides when the child ends (it
    closes the pipe or kills it), so the child ignores SIGINT instead of printing a trace.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(budget)
    renderer = Renderer(templates_dir, max_chars=max_chars, digest_threshold=digest_threshold)
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, object] = ("ok", getattr(renderer, method)(*args))
        except TemplateError as exc:
            answer = ("error", str(exc))
        except MemoryError:
            answer = ("error", f"a template used more than {budget // 2**20} MiB of memory")
        except Exception as exc:  # noqa: BLE001  # anything a template triggers fails that call only
            answer = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(answer)
        except (OSError, ValueError):
            return


def _stop(process: BaseProcess, conn: Connection) -> None:
    conn.close()
    if process.is_alive():
        process.kill()
    process.join(timeout=5)


def _one(value: object) -> Message:
    if not isinstance(value, Message):
        raise TemplateError(f"the renderer answered {type(value).__name__}, not a message")
    return value


def _many(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TemplateError(f"the renderer answered {type(value).__name__}, not a list")
    return value


class GuardedRenderer:
    """``Renderer``'s methods, each run in a child process with a deadline."""

    def __init__(
        self,
        templates_dir: Path | None = None,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        digest_threshold: int = DEFAULT_DIGEST_THRESHOLD,
        timeout: float = RENDER_TIMEOUT,
        validate_timeout: float = VALIDATE_TIMEOUT,
        memory_budget: int = MEMORY_BUDGET,
    ) -> None:
        self.templates_dir = templates_dir
        self.max_chars = max_chars
        self.digest_threshold = digest_threshold
        self.timeout = timeout
        self.validate_timeout = validate_timeout
        self.memory_budget = memory_budget
        self._lock = threading.Lock()
        self._child: tuple[BaseProcess, Connection] | None = None
        self._finalizer: weakref.finalize[..., GuardedRenderer] | None = None

    # --- Renderer's interface ---------------------------------------------------

    def render_event(self, event: Event, channel: Channel) -> Message:
        """One event as one message (see ``Renderer.render_event``)."""
        return _one(self._call("render_event", (event, channel), self.timeout))

    def render_digest(self, watch: str, events: Sequence[Event], channel: Channel) -> list[Message]:
        """Events of one poll as few messages as the channel allows."""
        messages = self._call("render_digest", (watch, list(events), channel), self.timeout)
        return [_one(m) for m in _many(messages)]

    def render_roundup(
        self, groups: Sequence[tuple[str, Sequence[Event]]], channel: Channel, reason: str
    ) -> list[Message]:
        """Held alerts of several watches as one digest (see ``Renderer.render_roundup``)."""
        plain = [(watch, list(events)) for watch, events in groups]
        messages = self._call("render_roundup", (plain, channel, reason), self.timeout)
        return [_one(m) for m in _many(messages)]

    def render_test(self, channel: Channel, notifier: str = "notifier") -> Message:
        """The ``test-notify`` message."""
        return _one(self._call("render_test", (channel, notifier), self.timeout))

    def validate(self, kinds: Iterable[EventKind | str] | None = None) -> list[str]:
        """Every template in every format rendered against samples; the problems found."""
        wanted = None if kinds is None else [EventKind(k) for k in kinds]
        try:
            problems = self._call("validate", (wanted,), self.validate_timeout)
        except TemplateError as exc:
            return [str(exc)]
        return [str(p) for p in _many(problems)]

    def close(self) -> None:
        """Stop the child process (a later call starts a new one)."""
        with self._lock:
            self._discard()

    # --- the child ---------------------------------------------------------------

    def _call(self, method: str, args: tuple[object, ...], timeout: float) -> object:
        with self._lock:
            process, conn = self._ensure()
            try:
                conn.send((method, args))
                if not conn.poll(timeout):
                    self._discard()
                    raise TemplateError(
                        f"rendering took longer than {timeout:g}s and was stopped "
                        "(does a template loop?)"
                    )
                status, value = conn.recv()
            except (EOFError, OSError) as exc:
                code = process.exitcode
                self._discard()
                raise TemplateError(
                    f"the template renderer died (exit code {code}; out of memory?)"
                ) from exc
        if status != "ok":
            raise TemplateError(str(value))
        return value

    def _ensure(self) -> tuple[BaseProcess, Connection]:
        if self._child is not None and self._child[0].is_alive():
            return self._child
        self._discard()
        parent, child = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=_serve,
            args=(child, self.templates_dir, self.max_chars, self.digest_threshold),
            kwargs={"budget": self.memory_budget},
            name="watcher-render",
            daemon=True,
        )
        process.start()
        child.close()
        self._child = (process, parent)
        self._finalizer = weakref.finalize(self, _stop, process, parent)
        return self._child

    def _discard(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None
        self._child = None
