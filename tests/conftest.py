"""Fixtures shared by the whole suite.

The first section starts REAL outside servers on free loopback ports, once per
session: CNCF distribution (Debian's ``docker-registry``) with no auth, htpasswd,
TLS or token auth; a tiny token service for the latter; and moto in server mode
for ECR. A missing tool skips the tests that need it, unless
``WHARF_REQUIRE_SERVICES=1`` (CI), where it fails them instead. Server logs go to
files in pytest's temporary directory, never to the terminal.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# =============================================================================
# Real servers: registries, token service, moto  (keep this section together)
# =============================================================================

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


# --- certificates ------------------------------------------------------------


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class IssuedCert:
    """A certificate with its private key, as issued by :class:`CertificateAuthority`."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def cert_pem(self) -> str:
        return _pem(self.cert)

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def cert_der_b64(self) -> str:
        """Standard base64 of the DER certificate, as a JWT ``x5c`` entry wants it."""
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``name.crt`` and ``name.key`` (0600) into ``directory``."""
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_text(self.cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_text(self.key_pem)
        return cert_path, key_path


class CertificateAuthority:
    """A throw-away CA (``cryptography``-made) that issues loopback server certificates."""

    def __init__(self, name: str = "Wharf Test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        public_key = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> str:
        return _pem(self.cert)

    def write(self, directory: Path) -> Path:
        path = directory / "ca.crt"
        path.write_text(self.cert_pem)
        return path

    def issue(
        self,
        common_name: str = "localhost",
        *,
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
        rsa_key: bool = False,
    ) -> IssuedCert:
        """A leaf certificate for ``hosts`` (IP and DNS SANs), for TLS or for signing tokens."""
        key = (
            rsa.generate_private_key(65537, 2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(IPv4Address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return IssuedCert(builder.sign(self.key, hashes.SHA256()), key)


@pytest.fixture(scope="session")
def ca() -> CertificateAuthority:
    """The session's test CA: ``ca.cert_pem``, ``ca.issue(...)`` for server certificates."""
    return CertificateAuthority()


@pytest.fixture(scope="session")
def other_ca() -> CertificateAuthority:
    """A second CA that issued none of the test servers' certificates."""
    return CertificateAuthority("Wharf Other Test CA")


# --- distribution (docker-registry) ------------------------------------------


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

    Subclasses give ``argv``, ``log_path``, ``port`` (and ``cwd``), and may override
    :meth:`ready` (default: the port accepts a TCP connection) and :meth:`log`.
    """

    name = "server"

    def __init__(self, argv: list[str], log_path: Path, port: int, *, cwd: Path | None = None):
        self.argv = argv
        self.log_path = log_path
        self.port = port
        self.cwd = cwd
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
            "log": {"level": "info", "accesslog": {"disabled": False}},
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
            [executable, "serve", str(self.config_path)], self.log_path, port, cwd=workdir
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


# --- token service ------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A distribution-style token service: Basic credentials in, RS256 JWT out.

    The JWT header carries the signing certificate in ``x5c``; distribution verifies it
    against ``rootcertbundle`` (the CA), then the signature with the certificate's key.
    """

    def __init__(self, *, signing: IssuedCert, issuer: str, service: str, users: dict) -> None:
        self.signing = signing
        self.issuer = issuer
        self.service = service
        self.users = users
        self.requests: list[dict] = []  # what each token request asked for
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), _TokenHandler)
        self._httpd.daemon_threads = True
        self._httpd.token_server = self  # type: ignore[attr-defined]
        self.realm = f"http://{LOOPBACK}:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def issue(self, subject: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) >= 3:
                access.append(
                    {
                        "type": parts[0],
                        "name": ":".join(parts[1:-1]),
                        "actions": [a for a in parts[-1].split(",") if a],
                    }
                )
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.signing.cert_der_b64]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self.signing.key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"


class _TokenHandler(BaseHTTPRequestHandler):
    server_version = "wharf-test-token/1"

    def do_GET(self) -> None:
        server: TokenServer = self.server.token_server  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        if url.path != "/token":
            return self._reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such"}]})
        query = parse_qs(url.query)
        user = self._basic_user(server.users)
        server.requests.append({"user": user, "scope": query.get("scope", [])})
        if user is None:
            return self._reply(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]},
            )
        if query.get("service", [""])[0] != server.service:
            return self._reply(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
        token = server.issue(user, query.get("scope", []))
        issued_at = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        self._reply(200, {"token": token, "expires_in": 300, "issued_at": issued_at})

    def _basic_user(self, users: dict) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        with contextlib.suppress(ValueError):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if name in users and secrets.compare_digest(users[name], password):
                return name
        return None

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        pass  # keep the terminal quiet; the registry log records every request


@pytest.fixture(scope="session")
def token_registry(registry_factory, ca, tmp_path_factory) -> Iterator[RegistryServer]:
    """A registry with ``auth: token`` and its own token service (``.token_server``).

    ``.username``/``.password`` are accepted by the token service; anonymous token
    requests are refused.
    """
    username, password = "wharf-token", "token-Passw0rd"
    workdir = tmp_path_factory.mktemp("token-service")
    tokens = TokenServer(
        signing=ca.issue("wharf-test-token-signer", hosts=(), rsa_key=True),
        issuer="wharf-test-token-issuer",
        service="wharf-test-registry",
        users={username: password},
    )
    tokens.start()
    server = registry_factory(
        auth=(username, password),
        auth_config={
            "token": {
                "realm": tokens.realm,
                "service": tokens.service,
                "issuer": tokens.issuer,
                "rootcertbundle": str(ca.write(workdir)),
            }
        },
    )
    server.token_server = tokens  # type: ignore[attr-defined]
    yield server
    tokens.stop()


# --- moto (AWS) -----------------------------------------------------------------

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAWHARFAMBIENTTEST",
    "AWS_SECRET_ACCESS_KEY": "ambient-secret-not-real",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never the developer's own profile, and never a slow EC2 metadata lookup.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode on a loopback port: its endpoint URL, e.g. ``http://127.0.0.1:PORT``.

    For the session, the environment holds fake ambient AWS credentials
    (``FAKE_AWS_ENV``), restored afterwards.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        service_unavailable("moto[server] is not installed")
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto's server logs every request through werkzeug; keep only its warnings.
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS_ENV.items():
            patch.setenv(name, value)
        yield f"http://{host}:{port}"
    server.stop()
    werkzeug_log.setLevel(werkzeug_level)


# =============================================================================
# End of the real-servers section.
# =============================================================================


@pytest.fixture
def moto_checks_credentials(moto_server):
    """moto answers like AWS for unknown keys (it accepts anything by default)."""
    answer = requests.post(f"{moto_server}/moto-api/reset-auth", data=b"0", timeout=5)
    previous = answer.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    yield moto_server
    requests.post(f"{moto_server}/moto-api/reset-auth", data=previous.encode(), timeout=5)


# =============================================================================
# Users: a superuser, a plain signed-in user (anonymous is the plain `client`)
# =============================================================================


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-password-1")


@pytest.fixture
def plain_user(django_user_model):
    return django_user_model.objects.create_user("viewer", password="viewer-password-1")


@pytest.fixture
def user_client(client, plain_user):
    client.force_login(plain_user)
    return client


# =============================================================================
# Real servers for the connection methods: an HTTP proxy (tinyproxy) and sshd
# =============================================================================


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


def _openssh_private_key(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def _openssh_public_key(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@dataclass
class SshKeyPair:
    private_openssh: str = field(repr=False)
    public_line: str  # "ssh-ed25519 AAAA…"

    @classmethod
    def generate(cls) -> SshKeyPair:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = ed25519.Ed25519PrivateKey.generate()
        return cls(_openssh_private_key(key), _openssh_public_key(key))

    @property
    def private_pem(self) -> str:
        """The same key in PKCS#8 PEM, the other format people paste."""
        key = serialization.load_ssh_private_key(self.private_openssh.encode(), password=None)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


class SshServer(ChildServer):
    """OpenSSH's sshd on a loopback port with its own host key and one authorized user key.

    ``.host``, ``.port``, ``.username``, ``.user_key`` (:class:`SshKeyPair`), ``.host_key_line``
    (a known_hosts line for the server), ``.log()`` (sshd's debug log names every forward).
    """

    name = "sshd"

    def __init__(self, executable: str, workdir: Path) -> None:
        import getpass

        port = free_port()
        self.host = LOOPBACK
        self.username = getpass.getuser()
        self.user_key = SshKeyPair.generate()
        host_key = SshKeyPair.generate()
        host_key_path = workdir / "ssh_host_ed25519_key"
        host_key_path.touch(mode=0o600)
        host_key_path.write_text(host_key.private_openssh)
        self.host_key_line = f"[{LOOPBACK}]:{port} {host_key.public_line}"
        authorized = workdir / "authorized_keys"
        authorized.write_text(self.user_key.public_line + "\n")
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {LOOPBACK}",
                    f"HostKey {host_key_path}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin yes",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "AllowTcpForwarding yes",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "LogLevel DEBUG1",
                    "MaxStartups 50",
                    "",
                ]
            )
        )
        super().__init__(
            [executable, "-D", "-e", "-f", str(config), "-p", str(port)],
            workdir / "sshd.log",
            port,
        )

    def known_hosts(self) -> str:
        return self.host_key_line


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory) -> Iterator[SshServer]:
    """sshd as a child on a free loopback port (see :class:`SshServer`)."""
    executable = require_tool("sshd")
    if os.geteuid() == 0:
        # sshd's privilege-separation directory; the Debian service makes it at boot.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    server = SshServer(executable, tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_registry_routes():
    """Each test starts without what earlier tests' clients learned about a registry route
    (plain HTTP, Basic auth), so request counts and first-contact paths are the test's own."""
    from registries import oci

    oci._ROUTES.clear()
    yield
    oci._ROUTES.clear()
