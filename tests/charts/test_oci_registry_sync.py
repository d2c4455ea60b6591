"""The repositories of one registry synced together: one session, several at once.

Against the real distribution registry behind a TCP relay that counts the connections
Wharf opens (tests.chartkit.DelayingRelay), so reuse is observed at a real server.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from charts.models import ChartVersion, SyncRun
from charts.sync import oci as oci_sync
from charts.sync import queue_sync
from charts.sync.run import run_registry_syncs, run_sync
from registries import oci
from tests.chartkit import DelayingRelay
from tests.charts.helpers import oci_registry, push_versions, source_of, unique

pytestmark = pytest.mark.django_db(transaction=True)

CONCURRENCY = 3
REPOSITORIES = 6
VERSIONS = ["1.0.0", "1.1.0", "2.0.0-rc.1"]


@pytest.fixture
def pushed(private_chart_registry) -> list[str]:
    repos = [unique("charts/batch") for _ in range(REPOSITORIES)]
    for repo in repos:
        push_versions(private_chart_registry, repo, repo.rsplit("/", 1)[1], VERSIONS)
    return repos


@pytest.fixture
def relay(private_chart_registry):
    with DelayingRelay("127.0.0.1", private_chart_registry.port, delay=0.005) as relay:
        yield relay


def queued_runs(registry) -> list[int]:
    return [
        queue_sync(source, trigger=SyncRun.Trigger.MANUAL).pk
        for source in registry.chart_sources.order_by("repository")
    ]


def indexed(registry) -> set[tuple]:
    return set(
        ChartVersion.objects.filter(chart__source__registry=registry).values_list(
            "chart__source__repository", "chart__name", "version", "digest", "fingerprint",
            "archive_digest", "archive_size", "app_version", "prerelease", "description", "keywords",
        )
    )  # fmt: skip


def test_the_repositories_of_a_registry_share_its_connections_and_match_the_sequential_path(
    private_chart_registry, pushed, relay, settings
):
    settings.WHARF_CHART_SYNC_CONCURRENCY = CONCURRENCY
    if connection.vendor == "sqlite":  # the in-memory test database is one connection
        settings.WHARF_OCI_SYNC_REPOSITORIES = 1
    together = oci_registry(private_chart_registry, pushed, url=relay.host, name=unique("batch"))
    # A client that meets this route for the first time probes https:// once (a plain-HTTP
    # registry with "Allow insecure connection"): learnt here, before counting.
    oci.ping(together.connection())
    before = relay.accepted

    results = run_registry_syncs(queued_runs(together))

    assert len(results) == REPOSITORIES
    assert all(run.status == SyncRun.Status.SUCCEEDED for run in results.values()), [
        run.error for run in results.values()
    ]
    opened = relay.accepted - before
    assert 1 <= opened <= CONCURRENCY
    # Each run counts its own requests (one tag list, a manifest and a config per version),
    # and the one ping of the shared session is on one of them.
    counts = sorted(run.http_requests for run in results.values())
    assert counts[:-1] == [1 + 2 * len(VERSIONS)] * (REPOSITORIES - 1)
    assert counts[-1] == 2 + 2 * len(VERSIONS)

    alone = oci_registry(private_chart_registry, pushed, name=unique("alone"))
    for run_id in queued_runs(alone):
        assert run_sync(run_id).status == SyncRun.Status.SUCCEEDED
    assert len(indexed(together)) == REPOSITORIES * len(VERSIONS)
    assert indexed(together) == indexed(alone)


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite's in-memory test database is one connection"
)
def test_repositories_run_at_once_within_the_limit_and_a_failing_one_fails_alone(
    private_chart_registry, pushed, settings, monkeypatch
):
    settings.WHARF_OCI_SYNC_REPOSITORIES = 3
    missing = unique("charts/never-pushed")
    registry = oci_registry(private_chart_registry, [*pushed, missing], name=unique("limit"))
    lock = threading.Lock()
    entered, in_flight, most = [0], [0], [0]
    # The first three repositories wait for each other: run one after another, they
    # would break the barrier (its timeout) instead.
    meet = threading.Barrier(3, timeout=20)
    original = oci_sync._sync_repository

    def observed(source, progress, **kw):
        with lock:
            entered[0] += 1
            first_three = entered[0] <= 3
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            if first_three:
                meet.wait()
            return original(source, progress, **kw)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(oci_sync, "_sync_repository", observed)
    results = run_registry_syncs(queued_runs(registry))

    assert not meet.broken
    assert entered[0] == REPOSITORIES + 1
    assert most[0] == 3  # at once, and never more than the limit
    by_repo = {run.source.repository: run for run in results.values()}
    assert by_repo[missing].status == SyncRun.Status.FAILED
    assert "was not found" in by_repo[missing].error
    for repo in pushed:
        assert by_repo[repo].status == SyncRun.Status.SUCCEEDED, by_repo[repo].error
        assert by_repo[repo].added == len(VERSIONS)
    assert ChartVersion.objects.filter(chart__source=source_of(registry, missing)).count() == 0


def test_the_worker_task_of_one_repository_takes_the_registry_s_other_queued_runs_along(
    private_chart_registry, pushed, settings
):
    from charts import tasks

    if connection.vendor == "sqlite":  # the in-memory test database is one connection
        settings.WHARF_OCI_SYNC_REPOSITORIES = 1
    registry = oci_registry(private_chart_registry, pushed[:3], name=unique("task"))
    other = oci_registry(private_chart_registry, pushed[3:4], name=unique("other"))
    first, *rest = queued_runs(registry)
    elsewhere = queued_runs(other)

    tasks.sync_chart_source.run(first)

    done = SyncRun.objects.filter(pk__in=[first, *rest])
    assert set(done.values_list("status", flat=True)) == {SyncRun.Status.SUCCEEDED}
    # Another registry's run is not taken along: its own task does it.
    assert SyncRun.objects.get(pk=elsewhere[0]).status == SyncRun.Status.QUEUED
    tasks.sync_chart_source.run(rest[0])  # a task for a run taken along does nothing
    assert SyncRun.objects.get(pk=rest[0]).status == SyncRun.Status.SUCCEEDED
