"""Every network operation ends by its total deadline, however slowly a server drips.

A dripping server sends a byte every 0.2 s, so the idle-read timeout (1 s here) never
fires; without a deadline each operation would run until the server gives up (20 s).
Each test measures how long the operation took: near the deadline, never near 20 s.
"""

from __future__ import annotations

import time

import pytest

from charts.helmrepo import HelmEndpoint, HelmRepoClient, HelmRepoError
from config.http import TLS_INSECURE, Transport
from registries import oci
from tests.hostile import DrippingServer

DEADLINE = 1.5
SLACK = 1.0  # the watchdog's reaction, the TLS probe of "insecure" mode, a slow machine
PING = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
MANIFEST_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
    b"Content-Length: 100000\r\n\r\n"
)


def transport(**fields) -> Transport:
    return Transport(**{"tls": TLS_INSECURE, "timeout": 1.0, "deadline": DEADLINE, **fields})


def registry_client(server: DrippingServer) -> oci.RegistryClient:
    return oci.RegistryClient(oci.Connection(host=server.host, transport=transport()))


def helm_client(server: DrippingServer) -> HelmRepoClient:
    return HelmRepoClient(HelmEndpoint(server.url, transport=transport()))


def time_failure(error_type: type[Exception], operation) -> tuple[float, Exception]:
    """How long ``operation()`` took to raise ``error_type``, and the error."""
    started = time.monotonic()
    with pytest.raises(error_type) as caught:
        operation()
    return time.monotonic() - started, caught.value


def assert_ended_by_the_deadline(seconds: float, error: Exception, deadline: float = DEADLINE):
    assert deadline - 0.2 <= seconds < deadline + SLACK, seconds
    assert f"did not finish answering within {deadline:g} seconds" in str(error)
    assert error.kind == "unreachable"


def test_a_manifest_that_drips_ends_at_the_request_deadline():
    server = DrippingServer(head=MANIFEST_HEAD, fast={"/v2/": PING})
    with server, registry_client(server) as client:
        seconds, error = time_failure(
            oci.RegistryError, lambda: client.get_manifest("team/app", "1.0.0")
        )
    assert_ended_by_the_deadline(seconds, error)
    assert "/v2/team/app/manifests/1.0.0" in server.paths


def test_a_blob_that_drips_ends_at_the_request_deadline():
    digest = "sha256:" + "0" * 64
    with DrippingServer(fast={"/v2/": PING}) as server, registry_client(server) as client:
        seconds, error = time_failure(
            oci.RegistryError, lambda: client.get_blob("team/app", digest, max_bytes=10**6)
        )
    assert_ended_by_the_deadline(seconds, error)


def test_a_status_line_and_headers_that_drip_end_at_the_request_deadline():
    # A per-read timeout never fires here: every read gets a byte well within it.
    with DrippingServer(drip_head=True) as server, registry_client(server) as client:
        seconds, error = time_failure(oci.RegistryError, client.ping)
    assert_ended_by_the_deadline(seconds, error)


def test_a_helm_index_that_drips_ends_at_the_index_deadline():
    with DrippingServer() as server, helm_client(server) as client:
        seconds, error = time_failure(
            HelmRepoError, lambda: client.fetch_index(max_bytes=10**6, deadline=2.0)
        )
    assert_ended_by_the_deadline(seconds, error, deadline=2.0)
    assert "the limit for one index download" in str(error)


def test_helm_headers_that_drip_end_at_the_index_deadline():
    with DrippingServer(drip_head=True) as server, helm_client(server) as client:
        seconds, error = time_failure(
            HelmRepoError, lambda: client.fetch_index(max_bytes=10**6, deadline=DEADLINE)
        )
    assert_ended_by_the_deadline(seconds, error)


def test_a_chart_archive_that_drips_ends_at_the_request_deadline():
    url_of_archive = "/charts/web-1.0.0.tgz"
    with DrippingServer() as server, helm_client(server) as client:
        seconds, error = time_failure(
            HelmRepoError,
            lambda: client.fetch_archive(server.url + url_of_archive, max_bytes=10**6),
        )
    assert_ended_by_the_deadline(seconds, error)
    assert "the limit for one chart archive download" in str(error)


def test_a_body_without_a_length_cut_at_the_deadline_is_not_taken_for_the_whole():
    # Read until the connection closes: a cut-off body must not look complete.
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    server = DrippingServer(head=head, body=b"entries: {}\n" * 1000)
    with server, helm_client(server) as client:
        seconds, error = time_failure(
            HelmRepoError, lambda: client.fetch_index(max_bytes=10**6, deadline=DEADLINE)
        )
    assert_ended_by_the_deadline(seconds, error)


def test_a_fast_server_is_not_cut_by_an_earlier_requests_deadline():
    # The watch of a finished request must never shut the pooled connection a later request
    # reuses: let the earlier deadlines pass between requests on one connection.
    with DrippingServer(fast={"*": PING}) as server, registry_client(server) as client:
        for _ in range(3):
            assert client.request("GET", "/v2/").status_code == 200
            time.sleep(DEADLINE / 2)  # time passing is the point, not waiting for work
        assert client.request("GET", "/v2/").status_code == 200


@pytest.mark.django_db
def test_a_helm_sync_ends_at_the_index_deadline_setting(settings):
    from charts.models import SyncRun
    from tests.charts.helpers import helm_source, sync

    settings.WHARF_HELM_INDEX_DEADLINE = 1.5
    settings.WHARF_REGISTRY_TIMEOUT = 1.0
    with DrippingServer() as server:
        started = time.monotonic()
        run = sync(helm_source(server))
        seconds = time.monotonic() - started
    assert run.status == SyncRun.Status.FAILED
    assert "did not finish answering within 1.5 seconds" in run.error
    assert seconds < 1.5 + SLACK + 1.0  # plus the run's own bookkeeping


@pytest.mark.django_db
def test_a_registry_request_ends_at_the_http_deadline_setting(settings):
    from tests.factories import RegistryFactory

    settings.WHARF_HTTP_DEADLINE = 1.5
    settings.WHARF_REGISTRY_TIMEOUT = 1.0
    with DrippingServer(drip_head=True) as server:
        registry = RegistryFactory(url=server.host, tls_mode=TLS_INSECURE)
        seconds, error = time_failure(oci.RegistryError, lambda: oci.ping(registry.connection()))
    assert_ended_by_the_deadline(seconds, error)


def test_a_short_deadline_started_beside_a_longer_one_still_ends_on_time():
    # The watchdog sleeps towards the earliest budget and is woken only by an earlier one:
    # a request with a longer budget in flight must not delay a shorter one's cut.
    from config import http

    with http.deadline(60.0, "a long operation"):
        server = DrippingServer(head=MANIFEST_HEAD, fast={"/v2/": PING})
        with server, registry_client(server) as client:
            seconds, error = time_failure(
                oci.RegistryError, lambda: client.get_manifest("team/app", "1.0.0")
            )
    assert_ended_by_the_deadline(seconds, error)
