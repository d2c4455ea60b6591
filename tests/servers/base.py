"""What every test server shares: loopback ports, waiting, and the child-process base.

A server the tests need but cannot find skips them (``service_unavailable``), unless
``WHARF_REQUIRE_SERVICES=1`` (CI), where it fails them instead. A :class:`ChildServer`
runs in the foreground with its output in a log file (the fixtures put it in pytest's
temporary directory, never on the terminal) and, on Linux, dies with pytest even when
pytest is killed. No fixtures here: the other modules in this package build on these.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pytest

LOOPBACK = "127.0.0.1"
SERVER_START_TIMEOUT = 20.0  # seconds to wait for a server to answer


def require_tool(name: str) -> str:
    """Path of executable ``name``; skip the test without it (fail under WHARF_REQUIRE_SERVICES=1)."""
    path = shutil.which(name)
    if path:
        return path
    service_unavailable(f"{name!r} is not installed")


def service_unavailable(reason: str) -> NoReturn:
    """Skip the test for want of an outside service, or fail it under WHARF_REQUIRE_SERVICES=1."""
    if os.environ.get("WHARF_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (and WHARF_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_until(check, *, what: str, timeout: float = SERVER_START_TIMEOUT) -> None:
    """Poll ``check()`` until it returns true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up within {timeout:g}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def wait_for(check, *, what: str, timeout: float = 10.0):
    """Poll ``check()`` until it returns something true, and return that: the tests' wait for
    background work (no sleeping a fixed time). Fails the test past ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _parent_death_signal():
    """On Linux, a child that gets SIGTERM when pytest dies, even if it dies by ``kill``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


# Looked up once here: the child between fork and exec must not load libraries.
_die_with_parent = _parent_death_signal()


class ChildServer:
    """A foreground server process of a test, its output in a log file.

    Subclasses give ``argv``, ``log_path``, ``port`` (and ``cwd``, and ``env``: variables
    set for the process on top of this one's), and may override :meth:`ready` (default: the
    port accepts a TCP connection) and :meth:`log`.
    """

    name = "server"

    def __init__(
        self,
        argv: list[str],
        log_path: Path,
        port: int,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ):
        self.argv = argv
        self.log_path = log_path
        self.port = port
        self.cwd = cwd
        self.env = env
        self._process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process and wait until it is ready; RuntimeError if it exits first."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env={**os.environ, **self.env} if self.env else None,
                preexec_fn=_die_with_parent,
            )
        try:
            wait_until(self._ready_or_exited, what=f"{self.name} on port {self.port}")
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ready(self) -> bool:
        try:
            socket.create_connection((LOOPBACK, self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def _ready_or_exited(self) -> bool:
        if not self.running:
            raise RuntimeError(f"{self.name} exited early; its log:\n{self.log()[-2000:]}")
        return self.ready()
