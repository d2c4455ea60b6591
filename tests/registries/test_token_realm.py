"""The token service a registry names (its Bearer realm) gets the registry's TLS choice.

A registry reached over verified TLS may not send Wharf to a plain-HTTP token service,
and the registry's credentials go to a token service on another host only over verified
TLS, whatever the registry's own TLS option. A fake registry and a fake token service on
loopback record what reached them; ``localhost`` is "another host" than ``127.0.0.1``.
"""

from __future__ import annotations

import json

import pytest

from config.http import TLS_CA, TLS_INSECURE, Transport
from registries import oci
from tests.hostile import Answer, RecordingServer

USER, PASSWORD = "robot", "registry-pw-do-not-leak"


def registry_routes(realm: str) -> dict:
    def v2(handler) -> Answer:
        if (handler.headers.get("Authorization") or "").startswith("Bearer "):
            return Answer(200, b"{}", {"Content-Type": "application/json"})
        challenge = f'Bearer realm="{realm}",service="fake-registry"'
        return Answer(401, b"{}", {"WWW-Authenticate": challenge})

    return {"/v2/": v2}


TOKEN = Answer(200, json.dumps({"token": "a-token", "expires_in": 300}).encode())


def connect(registry: RecordingServer, *, credentials: bool = True, **transport) -> oci.Connection:
    transport.setdefault("timeout", 5.0)
    return oci.Connection(
        host=registry.host,
        username=USER if credentials else "",
        password=PASSWORD if credentials else "",
        transport=Transport(**transport),
    )


def ping_error(conn: oci.Connection) -> oci.RegistryError:
    with pytest.raises(oci.RegistryError) as caught:
        oci.ping(conn)
    assert PASSWORD not in str(caught.value)
    return caught.value


def test_a_tls_registry_naming_a_plain_http_token_service_is_refused(ca):
    with RecordingServer({"/token": TOKEN}) as tokens, RecordingServer(tls=ca.issue()) as registry:
        registry.routes = registry_routes(tokens.url("/token"))
        error = ping_error(connect(registry, tls=TLS_CA, ca_pem=ca.cert_pem))

    assert error.kind == oci.RegistryError.TLS
    assert f"plain-HTTP token service ({tokens.host})" in str(error)
    assert "Secure with CA certificate" in str(error)
    assert tokens.seen == []


def test_credentials_never_go_to_a_plain_http_token_service_on_another_host():
    with RecordingServer({"/token": TOKEN}) as tokens, RecordingServer() as registry:
        registry.routes = registry_routes(f"http://localhost:{tokens.port}/token")
        error = ping_error(connect(registry, tls=TLS_INSECURE))

    assert error.kind == oci.RegistryError.TLS
    assert f"another host (localhost:{tokens.port})" in str(error)
    assert "only over verified TLS" in str(error)
    assert tokens.seen == []


def test_credentials_go_to_a_token_service_on_another_host_only_if_its_tls_verifies(ca):
    # "Allow insecure connection" is the registry's choice; the other host is still checked.
    with (
        RecordingServer({"/token": TOKEN}, tls=ca.issue()) as tokens,
        RecordingServer() as registry,
    ):
        registry.routes = registry_routes(f"https://localhost:{tokens.port}/token")
        error = ping_error(connect(registry, tls=TLS_INSECURE))

    assert error.kind == oci.RegistryError.TLS
    assert f"localhost:{tokens.port}" in str(error)
    assert "could not be verified" in str(error)
    assert not [seen for seen in tokens.seen if seen.authorization]


def test_a_token_service_on_another_host_with_a_verified_certificate_gets_the_login(ca):
    tokens, registry = (
        RecordingServer({"/token": TOKEN}, tls=ca.issue()),
        RecordingServer(tls=ca.issue()),
    )
    with tokens, registry:
        registry.routes = registry_routes(f"https://localhost:{tokens.port}/token")
        result = oci.ping(connect(registry, tls=TLS_CA, ca_pem=ca.cert_pem))

    assert result.auth_scheme == "bearer"
    (seen,) = tokens.seen
    assert seen.scheme == "https" and seen.authorization.startswith("Basic ")


def test_an_anonymous_token_from_a_plain_http_service_on_another_host_is_still_fetched():
    # No credentials, nothing to leak: "Allow insecure connection" goes on as before.
    with RecordingServer({"/token": TOKEN}) as tokens, RecordingServer() as registry:
        registry.routes = registry_routes(f"http://localhost:{tokens.port}/token")
        result = oci.ping(connect(registry, credentials=False, tls=TLS_INSECURE))

    assert result.auth_scheme == "bearer"
    assert [seen.authorization for seen in tokens.seen] == [None]


def test_a_plain_http_token_service_on_the_registrys_own_host_works_when_insecure_is_chosen():
    with RecordingServer({"/token": TOKEN}) as tokens, RecordingServer() as registry:
        registry.routes = registry_routes(tokens.url("/token"))  # 127.0.0.1, another port
        result = oci.ping(connect(registry, tls=TLS_INSECURE))

    assert result.auth_scheme == "bearer"
    assert tokens.seen[0].authorization.startswith("Basic ")
