"""A local fake TrendTrack API that answers with hostile data, for the hardening tests.

Each route (by path prefix) answers a scripted body; an empty page by default. A route
may hang (``delay``) or answer raw bytes (a body nested 200,000 deep).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FRESHNESS = "/v1/system/freshness"


def freshness(generated_at: str = "2026-04-24T06:00:00Z") -> bytes:
    data = {
        "latestReadyDate": "2026-04-23",
        "latestScheduledDate": "2026-04-24",
        "dataFreshnessLagDays": 1,
        "generatedAt": generated_at,
    }
    return json.dumps({"requestId": "req_1", "status": "ok", "data": data}).encode()


EMPTY_PAGE = json.dumps(
    {"requestId": "req_2", "data": [], "pagination": {"page": 1, "limit": 1, "total": 0}}
).encode()


@dataclass
class Route:
    body: bytes
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HostileApi:
    url: str
    routes: dict[str, Route]
    requests: list[str] = field(default_factory=list)


@contextmanager
def hostile_api(routes: dict[str, Route]) -> Iterator[HostileApi]:
    """Serve ``routes`` on 127.0.0.1 until the block ends."""
    api = HostileApi("", routes)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            api.requests.append(self.path)
            route = next(
                (r for prefix, r in api.routes.items() if self.path.startswith(prefix)),
                Route(EMPTY_PAGE, headers={"X-Credits-Used": "0"}),
            )
            if route.delay:
                time.sleep(route.delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(route.body)))
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(route.body)

        do_GET = _answer  # noqa: N815  # the stdlib dispatches on this name
        do_POST = _answer  # noqa: N815  # the stdlib dispatches on this name

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
