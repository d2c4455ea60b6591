"""Debian's ``tinyproxy`` on loopback ports, for the "via Proxy" connection method.

One open proxy and one that wants Basic proxy credentials, each with its own config and
a log that names every request, so tests can tell that traffic went through the proxy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.base import LOOPBACK, ChildServer, free_port, require_tool


class ProxyServer(ChildServer):
    """tinyproxy on a loopback port: ``.url`` (no credentials), ``.log()`` names every request."""

    name = "tinyproxy"

    def __init__(self, executable: str, workdir: Path, *, auth: tuple[str, str] | None) -> None:
        port = free_port()
        self.url = f"http://{LOOPBACK}:{port}"
        self.username, self.password = auth or ("", "")
        config = workdir / "tinyproxy.conf"
        lines = [
            f"Port {port}",
            f"Listen {LOOPBACK}",
            f"Allow {LOOPBACK}",
            "Timeout 30",
            "MaxClients 50",
            "LogLevel Info",
            f'PidFile "{workdir / "tinyproxy.pid"}"',
            "DisableViaHeader Yes",
        ]
        if os.geteuid() == 0:
            lines += ["User nobody", "Group nogroup"]
        if auth:
            lines.append(f"BasicAuth {auth[0]} {auth[1]}")
        config.write_text("\n".join(lines) + "\n")
        # Logged to stderr (-d keeps it in the foreground), which goes to the log file.
        super().__init__([executable, "-d", "-c", str(config)], workdir / "tinyproxy.log", port)


@pytest.fixture(scope="session")
def proxy_factory(tmp_path_factory) -> Iterator:
    """Start tinyproxy: ``proxy_factory(auth=("user", "pw"))``; all stop at the end."""
    executable = require_tool("tinyproxy")
    started: list[ProxyServer] = []

    def start_proxy(*, auth: tuple[str, str] | None = None) -> ProxyServer:
        server = ProxyServer(executable, tmp_path_factory.mktemp("proxy"), auth=auth)
        server.start()
        started.append(server)
        return server

    yield start_proxy
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def http_proxy(proxy_factory) -> ProxyServer:
    """An open HTTP proxy (CONNECT and absolute-URI requests) on loopback."""
    return proxy_factory()


@pytest.fixture(scope="session")
def auth_proxy(proxy_factory) -> ProxyServer:
    """An HTTP proxy that wants Basic proxy credentials (``.username``, ``.password``)."""
    return proxy_factory(auth=("wharf-proxy", "proxy-Passw0rd"))
