"""A run shows its HTTP requests as they happen, even while one long listing goes on.

A small registry on loopback pages its tag list and holds one page until the test has
seen the count on the run row (no sleeping: the test waits on the row, the server on an
event), so what the page would show mid-sync is asserted, not guessed.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from charts.models import ChartSource, SyncRun
from charts.sync import queue_sync, run_sync
from registries.models import Registry
from tests.factories import RegistryFactory

PAGES = 5
HELD_PAGE = 3


class PagingRegistry(BaseHTTPRequestHandler):
    release: threading.Event

    def do_GET(self):
        if self.path == "/v2/":
            return self.reply(200, {})
        page = int(self.path.rsplit("page=", 1)[1]) if "page=" in self.path else 1
        if page == HELD_PAGE:
            self.server.release.wait(timeout=30)
        headers = {}
        if page < PAGES:
            headers["Link"] = f'</v2/charts/app/tags/list?n=1&page={page + 1}>; rel="next"'
        return self.reply(200, {"name": "charts/app", "tags": []}, headers)

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def paging_registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), PagingRegistry)
    server.release = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_sync_shows_its_requests_on_the_run_while_the_tag_list_is_still_paging(
    paging_registry, settings
):
    settings.WHARF_RUN_HEARTBEAT_SECONDS = 0.1
    settings.WHARF_RUN_LEASE_SECONDS = 1.0
    registry = RegistryFactory(
        url=f"127.0.0.1:{paging_registry.server_address[1]}",
        registry_type=Registry.Type.PUBLIC, username="", secret="", auth_type="",
        tls_mode=Registry.Tls.INSECURE, chart_source=True, repositories=["charts/app"],
        push_images=False,
    )  # fmt: skip
    source = ChartSource.objects.get(registry=registry)
    run = queue_sync(source, trigger=SyncRun.Trigger.MANUAL)
    worker = threading.Thread(target=lambda: (run_sync(run.pk), connection.close()))
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while SyncRun.objects.get(pk=run.pk).http_requests < HELD_PAGE:
            assert time.monotonic() < deadline, "the run never showed its requests"
            time.sleep(0.05)
        assert SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.RUNNING
    finally:
        paging_registry.release.set()
        worker.join(timeout=30)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.http_requests >= PAGES
