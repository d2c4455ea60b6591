"""A tag list is read page by page, but not forever: pages and tags are bounded."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from config.http import TLS_INSECURE, Transport
from registries import oci
from tests.hostile import Answer, RecordingServer


def endless_pages(per_page: int, *, give_up: int = 300):
    """A tag list whose every page links to a new one (as a broken or hostile registry).

    It gives up after ``give_up`` pages, so that a client without limits still ends.
    """

    def page(handler) -> Answer:
        query = parse_qs(urlsplit(handler.path).query)
        number = int(query.get("page", ["0"])[0])
        tags = [f"{number}.{i}.0" for i in range(per_page)]
        headers = {"Content-Type": "application/json"}
        if number < give_up:
            headers["Link"] = f'</v2/endless/tags/list?n={per_page}&page={number + 1}>; rel="next"'
        body = json.dumps({"name": "endless", "tags": tags}).encode()
        return Answer(200, body, headers)

    return page


def client_for(server: RecordingServer) -> oci.RegistryClient:
    oci_conn = oci.Connection(host=server.host, transport=Transport(tls=TLS_INSECURE, timeout=5))
    oci._remember(oci_conn, plain_http=True)  # no TLS probe: the counts are the pages
    return oci.RegistryClient(oci_conn)


def tag_requests(server: RecordingServer) -> list[str]:
    return [seen.path for seen in server.seen if "/tags/list" in seen.path]


def test_a_tag_list_that_links_to_new_pages_forever_stops_at_the_page_limit():
    server = RecordingServer({"/v2/endless/tags/list": endless_pages(1)})
    with server, client_for(server) as client, pytest.raises(oci.RegistryError) as caught:
        client.list_tags("endless", page_size=1, max_pages=20, max_tags=10_000)

    assert len(tag_requests(server)) == 20
    assert caught.value.kind == oci.RegistryError.CONTENT
    assert "more than 20 pages" in str(caught.value)
    assert "endless" in str(caught.value)


def test_a_tag_list_over_the_tag_limit_is_refused():
    server = RecordingServer({"/v2/endless/tags/list": endless_pages(50)})
    with server, client_for(server) as client, pytest.raises(oci.RegistryError) as caught:
        client.list_tags("endless", page_size=50, max_pages=1000, max_tags=120)

    assert len(tag_requests(server)) == 3  # 150 tags seen: over 120 on the third page
    assert "more than 120 tags" in str(caught.value)


def test_a_tag_list_within_the_limits_is_read_whole():
    def two_pages(handler) -> Answer:
        if "page=1" in handler.path:
            return Answer(200, json.dumps({"tags": ["b"]}).encode())
        link = '</v2/short/tags/list?page=1>; rel="next"'
        return Answer(200, json.dumps({"tags": ["a"]}).encode(), {"Link": link})

    server = RecordingServer({"/v2/short/tags/list": two_pages})
    with server, client_for(server) as client:
        assert client.list_tags("short", max_pages=2, max_tags=2) == ["a", "b"]


@pytest.mark.django_db
def test_a_chart_sync_stops_at_the_page_limit_setting(settings):
    from charts.models import SyncRun
    from tests.charts.helpers import oci_registry, source_of, sync

    settings.WHARF_OCI_TAGS_MAX_PAGES = 7
    settings.WHARF_OCI_TAGS_PAGE_SIZE = 1
    with RecordingServer({"/v2/": Answer(200, b"{}")}) as server:
        server.routes["/v2/endless/tags/list"] = endless_pages(1)
        registry = oci_registry(server, ["endless"])
        run = sync(source_of(registry, "endless"))

    assert run.status == SyncRun.Status.FAILED
    assert "more than 7 pages" in run.error
    assert "WHARF_OCI_TAGS_MAX_PAGES" in run.error
    assert len(tag_requests(server)) == 7
