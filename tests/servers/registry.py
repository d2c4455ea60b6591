"""CNCF distribution registries (Debian's ``docker-registry``) on loopback ports.

The registry code in Wharf is tested against a real registry, not a mock: one with no
auth, one with htpasswd (Basic) auth, one with TLS from the ``ca`` fixture, each
started once per session; ``registry_factory`` starts more (``tests/charts`` does).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.servers.base import LOOPBACK, ChildServer, free_port, require_tool
from tests.servers.tls import IssuedCert


class RegistryServer(ChildServer):
    """One ``docker-registry serve`` process on a loopback port; stop() and start() again."""

    def __init__(
        self,
        *,
        executable: str,
        workdir: Path,
        port: int,
        tls: IssuedCert | None,
        ca_path: Path | None,
        auth_config: dict | None,
        username: str = "",
        password: str = "",
        log_level: str = "info",
        env: dict[str, str] | None = None,
    ) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = port
        self.host = f"{LOOPBACK}:{port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.tls = tls is not None
        self.ca_path = ca_path
        self.username = username
        self.password = password
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.log_path = workdir / "registry.log"
        self.config_path = workdir / "config.yml"
        config: dict = {
            "version": 0.1,
            # The access log (one line per request, what the tests and the bench count)
            # is written whatever the level; "info" adds a "response completed" line of
            # every request's fields, which costs the registry CPU (the bench uses "warn").
            "log": {"level": log_level, "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if tls:
            cert_path, key_path = tls.write(workdir, "server")
            config["http"]["tls"] = {"certificate": str(cert_path), "key": str(key_path)}
        if auth_config:
            config["auth"] = auth_config
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        super().__init__(
            [executable, "serve", str(self.config_path)],
            self.log_path,
            port,
            cwd=workdir,
            env=env,
        )

    name = "docker-registry"

    def __repr__(self) -> str:
        return f"<RegistryServer {self.url} running={self.running}>"

    def ready(self) -> bool:
        with requests.Session() as session:
            session.trust_env = False  # never through a proxy from the environment
            try:
                session.get(f"{self.url}/v2/", timeout=1, verify=str(self.ca_path))
            except requests.exceptions.ConnectionError:
                return False
        return True


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory, ca) -> Iterator:
    """Start registries: ``registry_factory(auth=("user", "pw"), tls=True)``.

    Returns a :class:`RegistryServer` (``.host``, ``.url``, ``.username``, ``.password``,
    ``.data_dir``, ``.stop()``, ``.start()``). Each call starts a new registry; all stop at
    the end of the session. ``auth_config`` replaces the whole ``auth:`` section.
    """
    executable = require_tool("docker-registry")
    started: list[RegistryServer] = []

    def start_registry(
        *,
        auth: tuple[str, str] | None = None,
        tls: bool = False,
        auth_config: dict | None = None,
    ) -> RegistryServer:
        workdir = tmp_path_factory.mktemp("registry")
        username, password = auth or ("", "")
        if auth and auth_config is None:
            htpasswd = subprocess.run(
                [require_tool("htpasswd"), "-Bbn", username, password],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (workdir / "htpasswd").write_text(htpasswd)
            auth_config = {"htpasswd": {"realm": "wharf-test", "path": str(workdir / "htpasswd")}}
        ca_path = ca.write(workdir)
        last_error: Exception | None = None
        for _attempt in range(3):  # another process may grab the free port first
            server = RegistryServer(
                executable=executable,
                workdir=workdir,
                port=free_port(),
                tls=ca.issue() if tls else None,
                ca_path=ca_path,
                auth_config=auth_config,
                username=username,
                password=password,
            )
            try:
                server.start()
            except RuntimeError as exc:
                last_error = exc
                if "address already in use" not in str(exc):
                    raise
                continue
            started.append(server)
            return server
        raise RuntimeError(f"could not start docker-registry: {last_error}")

    yield start_registry
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def public_registry(registry_factory) -> RegistryServer:
    """Plain HTTP, no authentication."""
    return registry_factory()


@pytest.fixture(scope="session")
def private_registry(registry_factory) -> RegistryServer:
    """Plain HTTP, htpasswd (Basic) authentication."""
    return registry_factory(auth=("wharf", "s3cret-Passw0rd"))


@pytest.fixture(scope="session")
def tls_registry(registry_factory) -> RegistryServer:
    """HTTPS with a certificate from the ``ca`` fixture, and htpasswd authentication."""
    return registry_factory(auth=("wharf-tls", "tls-Passw0rd"), tls=True)
