"""A registry's Retry-After shared by the repositories of one sync (README: OCI sync).

A small local registry answers 429 with ``Retry-After: 120`` to one repository's tag
list; the requests the other repositories make are counted at that server, in the
order they arrive.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.utils import timezone

from charts.models import SyncRun
from charts.sync import queue_sync
from charts.sync.run import run_registry_syncs
from registries.models import Registry
from tests.charts.helpers import source_of, unique
from tests.factories import RegistryFactory
from tests.servers.base import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LIMITED = "charts/a-limited"
BUSY = "charts/b-busy"  # many tags: still reading manifests when the 429 comes
OTHERS = ["charts/c-other", "charts/d-other"]
BUSY_TAGS = [f"1.{i}.0" for i in range(20)]
SENT_429 = "(the 429 answered)"
CONCURRENCY = 2


class Registry429(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.arrived: list[str] = []  # "METHOD path", in arrival order
        self.busy_in_flight = threading.Semaphore(0)  # a BUSY manifest request is in
        self.release = threading.Event()  # BUSY's manifest requests may be answered
        self.hold_busy = False
        self.host = f"127.0.0.1:{self.server_address[1]}"

    def after_429(self) -> list[str]:
        """The requests that arrived once the 429 had been answered."""
        with self.lock:
            if SENT_429 not in self.arrived:
                return []
            return self.arrived[self.arrived.index(SENT_429) + 1 :]


class _Handler(BaseHTTPRequestHandler):
    server: Registry429

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.arrived.append(f"{self.command} {self.path}")
        path = self.path.split("?", 1)[0]
        if path == "/v2/":
            return self._reply(200, {})
        if path == f"/v2/{LIMITED}/tags/list":
            if self.server.hold_busy:  # BUSY's manifests are in flight before the 429
                # C - 1: LIMITED's own request holds one of the C connections.
                for _ in range(CONCURRENCY - 1):
                    self.server.busy_in_flight.acquire(timeout=20)
            with self.server.lock:
                self.server.arrived.append(SENT_429)
            self._reply(
                429,
                {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]},
                {"Retry-After": "120"},
            )
            return
        if path.endswith("/tags/list"):
            name = path[len("/v2/") : -len("/tags/list")]
            return self._reply(200, {"name": name, "tags": BUSY_TAGS if name == BUSY else []})
        if path.startswith(f"/v2/{BUSY}/manifests/"):
            self.server.busy_in_flight.release()
            self.server.release.wait(timeout=20)
        return self._reply(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "no"}]})

    def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def limiting_registry():
    server = Registry429()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def chart_registry(server: Registry429, repositories: list[str]) -> Registry:
    return RegistryFactory(
        name=unique("limits"), url=server.host, tls_mode="insecure", chart_source=True,
        repositories=repositories, registry_type="public", username="", secret="",
        push_images=False,
    )  # fmt: skip


def queued(registry: Registry, repositories: list[str]) -> list[int]:
    """The runs in this order: the worker threads take them so."""
    return [
        queue_sync(source_of(registry, repo), trigger=SyncRun.Trigger.MANUAL).pk
        for repo in repositories
    ]


def assert_waits_for_the_registry(run: SyncRun) -> None:
    """Held back, not failed: queued until the registry's Retry-After, saying why."""
    assert run.status == SyncRun.Status.QUEUED
    assert run.error == ""
    assert "rate limiting" in run.wait_reason or "429" in run.wait_reason
    wait = run.not_before - timezone.now()
    assert timedelta(seconds=100) < wait <= timedelta(seconds=121)
    run.source.refresh_from_db()
    assert abs(run.source.retry_not_before - run.not_before) < timedelta(seconds=2)


def test_after_a_429_the_other_repositories_are_held_back_without_asking_the_registry(
    limiting_registry, settings, broker
):
    settings.WHARF_OCI_SYNC_REPOSITORIES = 1  # one after another: LIMITED first
    repos = [LIMITED, *OTHERS]
    registry = chart_registry(limiting_registry, repos)

    results = run_registry_syncs(queued(registry, repos))

    by_repo = {run.source.repository: run for run in results.values()}
    assert "120 s" in by_repo[LIMITED].wait_reason
    for repo in repos:
        assert_waits_for_the_registry(by_repo[repo])
    # Each is sent again for its time (a Celery eta), not before.
    timed = {args[0]: eta for _name, args, eta in broker.etas}
    assert timed == {run.pk: run.not_before for run in by_repo.values()}
    for repo in OTHERS:
        assert by_repo[repo].http_requests == 0
    assert limiting_registry.after_429() == []
    assert not [line for line in limiting_registry.arrived if any(r in line for r in OTHERS)]


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite's in-memory test database is one connection"
)
def test_a_repository_reading_manifests_when_another_gets_a_429_asks_no_more(
    limiting_registry, settings
):
    settings.WHARF_OCI_SYNC_REPOSITORIES = 2
    settings.WHARF_CHART_SYNC_CONCURRENCY = CONCURRENCY
    limiting_registry.hold_busy = True
    repos = [BUSY, LIMITED]
    registry = chart_registry(limiting_registry, repos)
    done: dict = {}
    syncing = threading.Thread(
        target=lambda: done.update(run_registry_syncs(queued(registry, repos))), daemon=True
    )
    syncing.start()
    limited = source_of(registry, LIMITED)
    # LIMITED's 429 is answered once BUSY has C manifest requests in flight; those wait at
    # the server until LIMITED's run has been held back by it. Whatever BUSY asks for after the
    # 429 is asked before the registry's Retry-After has passed.
    wait_for(
        lambda: SyncRun.objects.filter(source=limited, not_before__isnull=False).exists(),
        what="the rate-limited repository's run to be held back",
        timeout=30,
    )
    limiting_registry.release.set()
    syncing.join(timeout=30)

    assert not syncing.is_alive()
    by_repo = {run.source.repository: run for run in done.values()}
    for repo in repos:
        assert_waits_for_the_registry(by_repo[repo])
    # Only a request already waiting for a connection when the 429 came may still go
    # out (one: C workers, C - 1 connections free); none of the other 18 tags.
    late = limiting_registry.after_429()
    assert len(late) <= 1 and all(f"/v2/{BUSY}/manifests/" in line for line in late), late
    busy_manifests = [
        line for line in limiting_registry.arrived if f"/v2/{BUSY}/manifests/" in line
    ]
    assert CONCURRENCY - 1 <= len(busy_manifests) <= CONCURRENCY
