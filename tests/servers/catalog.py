"""A registry API that answers ``GET /v2/_catalog`` however a test tells it to.

:class:`HostileCatalog` listens on a loopback port (plain HTTP) and answers ``/v2/`` with
200, ``/v2/_catalog`` with ``pages[i]`` (a dict: ``body`` bytes, ``link`` header, ``delay``
seconds) for the ``i``-th page asked for (the ``page`` query parameter, 0 without one),
and every tag list with no tags (or ``tag_pages``, likewise). It records each request's path and ``Authorization``
header, so a test sees where credentials went.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.servers.base import LOOPBACK


def page(names, link: str = "", delay: float = 0.0) -> dict:
    return {"body": json.dumps({"repositories": names}).encode(), "link": link, "delay": delay}


class HostileCatalog(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pages: list[dict] | None = None, *, basic: bool = False) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.pages = pages or []
        self.basic = basic  # ask for Basic credentials (401 to a request without any)
        self.tag_pages: list[dict] = []  # every tag list's pages, as ``pages`` (tags in body)
        self.seen: list[tuple[str, str]] = []  # (path, Authorization)
        self.host = f"{LOOPBACK}:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> HostileCatalog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: HostileCatalog
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization", "")))
        url = urlsplit(self.path)
        headers: dict[str, str] = {}
        if self.server.basic and not self.headers.get("Authorization"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="hostile"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if url.path == "/v2/_catalog" and self.server.pages:
            index = int(parse_qs(url.query).get("page", ["0"])[0])
            answer = self.server.pages[min(index, len(self.server.pages) - 1)]
            time.sleep(answer.get("delay", 0.0))
            body = answer["body"]
            if answer.get("link"):
                headers["Link"] = answer["link"]
        elif url.path.endswith("/tags/list") and self.server.tag_pages:
            index = int(parse_qs(url.query).get("page", ["0"])[0])
            answer = self.server.tag_pages[min(index, len(self.server.tag_pages) - 1)]
            time.sleep(answer.get("delay", 0.0))
            body = answer["body"]
            if answer.get("link"):
                headers["Link"] = answer["link"]
        elif url.path.endswith("/tags/list"):
            body = b'{"tags": []}'
        else:
            body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
