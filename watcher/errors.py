"""The one exception tree of watcher.

Third-party errors are translated at the module that owns the library, so callers
only ever catch these::

    WatcherError
    ├── ConfigError               watches.yaml is invalid (carries every problem found)
    ├── TemplateError             a template fails to load or render
    ├── StoreError                the state database failed (disk full, locked, corrupt)
    ├── HealthError               the health endpoint could not be served (port taken)
    └── ApiError                  the TrendTrack API said no or could not be reached
        ├── ApiUnavailable        timeouts, resets, 5xx, invalid JSON after all retries
        ├── RateLimited           429 after all retries
        ├── ValidationFailed      400 validation_error (details name the fields)
        ├── AuthError             401 / 403: the key is missing, wrong, revoked, disabled
        ├── InsufficientCredits   402: the balance is short
        ├── NotFound              404
        ├── ParameterError        our own check of a request, before sending it
        └── PollCrashed           a poll failed inside watcher (hostile data, or a bug)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass


class WatcherError(Exception):
    """Root of every error watcher raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config file, located as precisely as we can."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ConfigError(WatcherError):
    """watches.yaml is invalid; ``problems`` lists every error, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class TemplateError(WatcherError):
    """A template is missing, does not compile, or fails to render."""


class StoreError(WatcherError):
    """The state database failed; the poll that hit it is not applied."""


class HealthError(WatcherError):
    """The health endpoint could not be served (e.g. its port is taken)."""


@dataclass(frozen=True, slots=True)
class ValidationDetail:
    """One entry of ``error.details.validationErrors``."""

    field: str
    location: str | None = None
    expected: tuple[str, ...] = dataclasses.field(default_factory=tuple)


class ApiError(WatcherError):
    """The API answered with an error, or could not be reached at all."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        details: Sequence[ValidationDetail] = (),
    ) -> None:
        self.code = code
        self.status = status
        self.request_id = request_id
        self.details = tuple(details)
        parts = [message]
        if code:
            parts.append(f"code={code}")
        if status:
            parts.append(f"status={status}")
        if request_id:
            parts.append(f"requestId={request_id}")
        super().__init__(" ".join(parts))


class ApiUnavailable(ApiError):
    """Timeouts, dropped connections, 5xx or invalid JSON, after every retry."""


class RateLimited(ApiError):
    """429 after every retry; ``retry_after`` is the server's last hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ValidationFailed(ApiError):
    """400 validation_error: a parameter the server does not accept."""

    def rejects(self, name: str) -> bool:
        """Whether the server rejected parameter ``name`` (query-string or body)."""
        return any(d.field.rsplit(".", 1)[-1] == name for d in self.details)


class AuthError(ApiError):
    """401 or 403: the key is missing, unknown, revoked, expired or disabled."""


class InsufficientCredits(ApiError):
    """402 insufficient_credits: the balance is below the request's reservation."""


class NotFound(ApiError):
    """404 not_found: no such item or shop."""


class ParameterError(ApiError):
    """A request parameter failed our own validation; nothing was sent."""


class PollCrashed(ApiError):
    """A poll failed inside watcher, not at the API: data it could not process (a date
    past year 9999, a body nested too deep) or a bug. Counted as a failure of the watch,
    like an API error, so ``watch_failing`` fires."""
