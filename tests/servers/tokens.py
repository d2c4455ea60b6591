"""A distribution-style token service, and a registry with ``auth: token`` behind it.

Token auth (Bearer tokens from a realm, as Docker Hub, GHCR and Harbor use) is the
other way registries authenticate; this small service in a thread issues the JWTs a
real ``docker-registry`` verifies against the ``ca`` fixture.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.servers.base import LOOPBACK
from tests.servers.registry import RegistryServer
from tests.servers.tls import IssuedCert


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
        # Resource types asked for but not granted (the token carries no access to them),
        # as a token service does for an account without that right: e.g. {"registry"}
        # for the catalog (``registry:catalog:*``).
        self.withheld_types: set[str] = set()
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
            if len(parts) >= 3 and parts[0] not in self.withheld_types:
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


def start_token_registry(registry_factory, ca, workdir) -> RegistryServer:
    """A new registry with ``auth: token`` and its own started token service
    (``.token_server``; stop it with ``.token_server.stop()``)."""
    username, password = "wharf-token", "token-Passw0rd"
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
    return server


@pytest.fixture(scope="session")
def token_registry(registry_factory, ca, tmp_path_factory) -> Iterator[RegistryServer]:
    """A registry with ``auth: token`` and its own token service (``.token_server``).

    ``.username``/``.password`` are accepted by the token service; anonymous token
    requests are refused.
    """
    server = start_token_registry(registry_factory, ca, tmp_path_factory.mktemp("token-service"))
    yield server
    server.token_server.stop()  # type: ignore[attr-defined]
