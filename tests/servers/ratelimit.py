"""A rate-limiting front for a real registry: adds the headers, counts, and answers 429s.

:class:`RateLimitingFront` listens on a loopback port and passes every request on to a
real ``docker-registry`` (plain HTTP), adding the rate-limit headers a registry such as
Docker Hub sends on each answer. It keeps the budget itself: each request it passes on
(``/v2/`` pings aside) costs one; with none left it answers ``429 Too Many Requests``
with ``Retry-After``, as Docker Hub does. ``refuse(n, path_part)`` makes it answer the
next ``n`` matching requests with 429 whatever the budget (a burst limit). The header
forms:

- ``dockerhub``: ``RateLimit-Limit: 100;w=21600``, ``RateLimit-Remaining: 76;w=21600``;
- ``ietf``: ``RateLimit-Limit: 100``, ``RateLimit-Remaining: 76``, ``RateLimit-Reset: 30``,
  ``RateLimit-Policy: 100;w=60`` (the drafts up to 06);
- ``structured``: ``RateLimit-Policy: "default";q=100;w=60`` and ``RateLimit:
  "default";r=76;t=30`` (the drafts from 08 on).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tests.servers.base import LOOPBACK

HOP_BY_HOP = {
    "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
    "server", "date",
}  # fmt: skip


class RateLimitingFront(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        upstream: str,
        *,
        limit: int = 100,
        window: int = 21600,
        reset: int = 30,
        style: str = "dockerhub",
        retry_after: str = "120",
    ) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.upstream = upstream  # "host:port" of a plain-HTTP registry
        self.limit = limit
        self.remaining = limit
        self.window = window
        self.reset = reset
        self.style = style
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.passed: list[str] = []  # "METHOD path" passed on to the registry, in order
        self.refused: list[str] = []  # answered 429
        self._refusals: list[tuple[str, int, str]] = []  # (path part, how many, Retry-After)
        self.host = f"{LOOPBACK}:{self.server_address[1]}"
        self._session = requests.Session()
        self._session.trust_env = False
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> RateLimitingFront:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()
        self._session.close()

    def refuse(self, times: int, path_part: str = "", *, retry_after: str = "0") -> None:
        """Answer the next ``times`` requests whose path holds ``path_part`` with 429."""
        with self.lock:
            self._refusals.append((path_part, times, retry_after))

    def new_window(self) -> None:
        """The window resets: the whole limit is there again."""
        with self.lock:
            self.remaining = self.limit

    def requests_for(self, path_part: str) -> list[str]:
        with self.lock:
            return [line for line in self.passed + self.refused if path_part in line]

    def counted(self) -> int:
        """Requests that cost budget (passed on, pings aside)."""
        with self.lock:
            return sum(1 for line in self.passed if not line.endswith(" /v2/"))

    def headers(self) -> dict[str, str]:
        left = max(self.remaining, 0)
        if self.style == "dockerhub":
            return {
                "RateLimit-Limit": f"{self.limit};w={self.window}",
                "RateLimit-Remaining": f"{left};w={self.window}",
                "Docker-RateLimit-Source": LOOPBACK,
            }
        if self.style == "ietf":
            return {
                "RateLimit-Limit": str(self.limit),
                "RateLimit-Remaining": str(left),
                "RateLimit-Reset": str(self.reset),
                "RateLimit-Policy": f"{self.limit};w={self.window}",
            }
        return {
            "RateLimit-Policy": f'"default";q={self.limit};w={self.window}',
            "RateLimit": f'"default";r={left};t={self.reset}',
        }

    def decide(self, line: str) -> str | None:
        """None to pass ``line`` on (and spend one), or the Retry-After of a 429."""
        with self.lock:
            for index, (part, times, retry_after) in enumerate(self._refusals):
                if part in line and times > 0:
                    self._refusals[index] = (part, times - 1, retry_after)
                    self.refused.append(line)
                    return retry_after
            if line.endswith(" /v2/"):
                self.passed.append(line)
                return None
            if self.remaining <= 0:
                self.refused.append(line)
                return self.retry_after
            self.remaining -= 1
            self.passed.append(line)
            return None


class _Handler(BaseHTTPRequestHandler):
    server: RateLimitingFront
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def _answer(self) -> None:
        line = f"{self.command} {self.path.split('?', 1)[0]}"
        retry_after = self.server.decide(line)
        if retry_after is not None:
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limit reached"}]}'
            self.send_response(429)
            for name, value in self.server.headers().items():
                self.send_header(name, value)
            self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        upstream = self.server._session.request(
            self.command,
            f"http://{self.server.upstream}{self.path}",
            headers=headers,
            allow_redirects=False,
            timeout=10,
        )
        body = upstream.content
        self.send_response(upstream.status_code)
        for name, value in upstream.headers.items():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        for name, value in self.server.headers().items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
