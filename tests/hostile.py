"""Small hostile (or merely odd) HTTP servers on loopback, each a thread of the test.

- :class:`RecordingServer`: answers from a table of routes and records every request
  (scheme, path, Authorization); with a certificate it speaks TLS *and* plain HTTP on
  the same port, so a test can tell which one a client used for the same host:port.
- :class:`DrippingServer`: sends its answer one byte at a time, slowly, for far longer
  than any deadline, and stops by itself (so a test that fails still ends).

Plain classes, no pytest fixtures; every server is a context manager.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the server saw it."""

    scheme: str
    method: str
    path: str
    authorization: str | None
    headers: dict[str, str]


Route = Answer | Callable[["_Handler"], Answer]


class _Handler(BaseHTTPRequestHandler):
    server: _MixedServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool = True) -> None:
        owner = self.server.owner
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        owner.seen.append(
            Seen(
                scheme,
                self.command,
                self.path,
                self.headers.get("Authorization"),
                dict(self.headers.items()),
            )
        )
        route = owner.routes.get(self.path.split("?", 1)[0]) or owner.default
        answer = route(self) if callable(route) else route
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if body and answer.body:
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _MixedServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: RecordingServer

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.owner.tls_context
        if context is not None:
            request.settimeout(5)
            try:
                first = request.recv(1, socket.MSG_PEEK)
            except OSError:
                return
            if first == b"\x16":  # a TLS ClientHello
                try:
                    request = context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    return
        self.RequestHandlerClass(request, client_address, self)


class RecordingServer:
    """Answers ``routes`` (path -> :class:`Answer` or a function of the handler), else 404.

    ``username``/``password``/``tls`` let the chart test helpers (``oci_registry``) take it
    for an anonymous plain-HTTP registry.
    """

    username = ""
    password = ""

    @property
    def tls(self) -> bool:
        return self.tls_context is not None

    def __init__(self, routes: dict[str, Route] | None = None, *, tls: Any = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.default: Route = Answer(404, b"not here")
        self.seen: list[Seen] = []
        self.tls_context: ssl.SSLContext | None = None
        if tls is not None:  # an IssuedCert from tests.servers.tls
            import tempfile
            from pathlib import Path

            folder = Path(tempfile.mkdtemp(prefix="wharf-hostile-"))
            cert, key = tls.write(folder, "server")
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(cert, key)
        self._server = _MixedServer((LOOPBACK, 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self.host = f"{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "", scheme: str = "") -> str:
        scheme = scheme or ("https" if self.tls_context else "http")
        return f"{scheme}://{self.host}{path}"

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class DrippingServer:
    """A server that drips: ``head`` and ``body`` are sent a byte every ``interval`` seconds.

    ``fast`` maps a request path to a complete answer sent at once (e.g. the ``/v2/``
    ping); ``"*"`` answers every path so. A TLS ClientHello is refused by closing the connection, so a client
    in "insecure" mode falls back to plain HTTP. Each connection gives up after
    ``give_up`` seconds, so a client without a deadline still ends a failing test.
    """

    def __init__(
        self,
        *,
        head: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        body: bytes = b"x" * 100_000,
        interval: float = 0.2,
        give_up: float = 20.0,
        fast: dict[str, bytes] | None = None,
        drip_head: bool = False,
    ) -> None:
        self.head = head
        self.body = body
        self.interval = interval
        self.give_up = give_up
        self.fast = fast or {}
        self.drip_head = drip_head
        self.paths: list[str] = []
        self._sock = socket.create_server((LOOPBACK, 0))
        self.port = self._sock.getsockname()[1]
        self.host = f"{LOOPBACK}:{self.port}"
        self.url = f"http://{self.host}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> DrippingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        with conn:
            conn.settimeout(5)
            try:
                while True:
                    request = self._read_request(conn)
                    if request is None:
                        return
                    path = request.split(b" ", 2)[1].decode() if b" " in request else ""
                    self.paths.append(path)
                    answer = self.fast.get(path) or self.fast.get("*")
                    if answer is None:
                        self._drip(conn, started)
                        return
                    conn.sendall(answer)
            except OSError:
                return

    def _read_request(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk or data[:1] == b"\x16" or chunk[:1] == b"\x16":
                return None  # closed, or TLS: this server speaks plain HTTP only
            data += chunk
        return data

    def _drip(self, conn: socket.socket, started: float) -> None:
        if not self.drip_head:
            conn.sendall(self.head)
            payload = self.body
        else:
            payload = self.head + self.body
        for byte in payload:
            if self._stop.is_set() or time.monotonic() - started > self.give_up:
                return
            conn.sendall(bytes([byte]))
            time.sleep(self.interval)
