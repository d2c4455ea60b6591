"""A Helm repository's credentials go only where Helm sends them: its own scheme, host, port."""

from __future__ import annotations

import pytest

from charts.helmrepo import HelmEndpoint, HelmRepoClient
from config.http import TLS_CA, TLS_INSECURE, Transport
from tests.chartkit import helm_index, make_chart_archive
from tests.hostile import Answer, RecordingServer

USER, PASSWORD = "reader", "helm-pw-do-not-leak"
ARCHIVE = make_chart_archive("web", "1.0.0")


def endpoint(url: str, **transport) -> HelmEndpoint:
    transport.setdefault("tls", TLS_INSECURE)
    transport.setdefault("timeout", 5.0)
    return HelmEndpoint(url, USER, PASSWORD, transport=Transport(**transport))


def fetch(endpoint: HelmEndpoint, archive_url: str) -> bytes:
    with HelmRepoClient(endpoint) as client:
        client.fetch_index(max_bytes=10**6)
        return client.fetch_archive(archive_url, max_bytes=10**6)


def test_an_https_repository_never_sends_its_password_to_a_plain_http_archive_url(ca):
    # Same host and port, other scheme: what a hostile index.yaml writes to read the password.
    with RecordingServer(tls=ca.issue()) as server:
        archive_url = server.url("/charts/web-1.0.0.tgz", scheme="http")
        server.routes = {
            "/index.yaml": Answer(body=helm_index([{"name": "web", "version": "1.0.0"}])),
            "/charts/web-1.0.0.tgz": Answer(body=ARCHIVE),
        }
        data = fetch(endpoint(server.url(), tls=TLS_CA, ca_pem=ca.cert_pem), archive_url)

    assert data == ARCHIVE
    index, archive = server.seen
    assert (index.scheme, index.path) == ("https", "/index.yaml")
    assert index.authorization and index.authorization.startswith("Basic ")
    assert (archive.scheme, archive.path) == ("http", "/charts/web-1.0.0.tgz")
    assert archive.authorization is None


def test_an_archive_on_the_repositorys_own_origin_gets_the_credentials():
    with RecordingServer({"/index.yaml": Answer(body=b"entries: {}\n")}) as server:
        server.routes["/charts/web.tgz"] = Answer(body=ARCHIVE)
        fetch(endpoint(server.url("/")), server.url("/charts/web.tgz"))

    assert all(seen.authorization for seen in server.seen)


def test_a_redirect_to_another_port_of_the_same_host_gets_no_credentials():
    with RecordingServer() as other, RecordingServer() as server:
        other.routes["/index.yaml"] = Answer(body=b"entries: {}\n")
        server.routes["/index.yaml"] = Answer(302, headers={"Location": other.url("/index.yaml")})
        with HelmRepoClient(endpoint(server.url())) as client:
            client.fetch_index(max_bytes=10**6)

    assert server.seen[0].authorization
    assert other.seen[0].authorization is None


@pytest.mark.parametrize(
    ("repository", "url", "sent"),
    [
        ("https://charts.example.com/stable", "https://charts.example.com/stable/a.tgz", True),
        ("https://charts.example.com/stable", "https://CHARTS.example.com:443/a.tgz", True),
        ("http://charts.example.com", "http://charts.example.com:80/a.tgz", True),
        ("https://charts.example.com/stable", "http://charts.example.com/stable/a.tgz", False),
        ("https://charts.example.com:8443", "http://charts.example.com:8443/a.tgz", False),
        ("https://charts.example.com:8443", "https://charts.example.com/a.tgz", False),
        ("https://charts.example.com", "https://charts.example.com:8443/a.tgz", False),
        ("https://charts.example.com", "https://cdn.example.com/a.tgz", False),
        ("http://charts.example.com", "https://charts.example.com/a.tgz", False),
        ("https://charts.example.com", "https://charts.example.com.evil.test/a.tgz", False),
    ],
)
def test_credentials_go_only_to_the_repositorys_scheme_host_and_port(repository, url, sent):
    assert (endpoint(repository).credentials_for(url) is not None) is sent
