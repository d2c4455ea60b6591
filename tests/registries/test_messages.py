"""What a registry's odd answers are called: a redirect loop is a redirect loop, not TLS."""

from __future__ import annotations

import pytest

from config.http import TLS_CA, TLS_INSECURE, Transport
from registries import oci
from tests.hostile import Answer, RecordingServer

MANIFEST = "/v2/team/app/manifests/1.0.0"


def client_for(server: RecordingServer, **transport) -> oci.RegistryClient:
    transport.setdefault("timeout", 5.0)
    return oci.RegistryClient(oci.Connection(host=server.host, transport=Transport(**transport)))


def manifest_error(server: RecordingServer, **transport) -> oci.RegistryError:
    with client_for(server, **transport) as client, pytest.raises(oci.RegistryError) as caught:
        client.get_manifest("team/app", "1.0.0")
    return caught.value


def loop(server: RecordingServer) -> None:
    server.routes[MANIFEST] = lambda handler: Answer(302, headers={"Location": MANIFEST})


def test_a_redirect_loop_with_insecure_chosen_is_reported_as_a_redirect_loop():
    # Plain HTTP: the TLS probe fails first, then plain HTTP loops. The TLS failure (and
    # "choose Allow insecure connection", which is chosen) is not the news.
    with RecordingServer() as server:
        loop(server)
        error = manifest_error(server, tls=TLS_INSECURE)

    assert error.kind == oci.RegistryError.PROTOCOL
    assert "redirect loop" in str(error)
    assert "TLS" not in str(error) and "Allow insecure connection" not in str(error)
    assert server.host in str(error)


def test_a_redirect_loop_over_verified_tls_is_reported_as_a_redirect_loop(ca):
    with RecordingServer(tls=ca.issue()) as server:
        loop(server)
        error = manifest_error(server, tls=TLS_CA, ca_pem=ca.cert_pem)

    assert error.kind == oci.RegistryError.PROTOCOL
    assert "redirect loop" in str(error)


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (lambda c: c.get_manifest("team/app", "1.0.0"), "The manifest of team/app:1.0.0 was not found"),
        (lambda c: c.list_tags("team/app"), "The tag list of team/app was not found"),
        (
            lambda c: c.get_blob("team/app", "sha256:" + "a" * 64, max_bytes=100),
            "Blob sha256:aaaaaaaaaaaa… of team/app was not found",
        ),
    ],
)  # fmt: skip
def test_not_found_says_what_was_not_found_where(read, message):
    server = RecordingServer()
    raises = pytest.raises(oci.RegistryError)
    with server, client_for(server, tls=TLS_INSECURE) as client, raises as caught:
        read(client)

    assert caught.value.kind == oci.RegistryError.NOT_FOUND
    assert str(caught.value).startswith(f"{message} on {server.host} (HTTP 404")
    assert "has no the" not in str(caught.value)
