"""Queueing: saves that change sources, the beat task, back-off after Retry-After."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.utils import timezone

from charts.models import ChartSource, HelmRepository, SyncRun
from charts.sync import run_sync
from charts.tasks import sync_due_sources
from config.runs import recover_runs
from tests.charts.helpers import helm_source, oci_registry, sync, unique

pytestmark = pytest.mark.django_db


def test_saving_a_chart_source_registry_queues_a_sync_per_new_repository(
    chart_registry, queued_syncs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        registry = oci_registry(chart_registry, ["charts/a", "charts/b"])
    runs = SyncRun.objects.filter(source__registry=registry)
    assert sorted(queued_syncs) == sorted(runs.values_list("pk", flat=True))
    assert runs.count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        registry.repositories = ["charts/a", "charts/b", "charts/c"]
        registry.save()
    assert len(queued_syncs) == 3  # only the new repository


def test_beat_queues_every_active_source_once(
    helm_repo, queued_syncs, django_capture_on_commit_callbacks
):
    active = helm_source(helm_repo)
    inactive = helm_source(helm_repo, active=False)
    SyncRun.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_sources() == 1
        assert sync_due_sources() == 0  # the first run is still queued

    assert list(SyncRun.objects.values_list("source_id", flat=True)) == [active.pk]
    assert not inactive.runs.exists()


class RateLimited(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(
            {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}
        ).encode()
        self.send_response(429)
        self.send_header("Retry-After", "120")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def rate_limited_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RateLimited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_429_is_recorded_and_the_schedule_waits_for_retry_after(
    rate_limited_server, queued_syncs, django_capture_on_commit_callbacks
):
    repository = HelmRepository.objects.create(
        name=unique("limited"), url=f"http://{rate_limited_server}", tls_mode="insecure"
    )
    from charts.sources import sync_helm_repository_source

    source = sync_helm_repository_source(repository, changed=True)
    run = SyncRun.objects.get(source=source)
    run_sync(run.pk)
    run.refresh_from_db()

    assert run.status == SyncRun.Status.FAILED
    assert "rate limiting (HTTP 429)" in run.error and "120 s" in run.error
    source.refresh_from_db()
    assert source.retry_not_before > timezone.now() + timedelta(seconds=100)
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_sources() == 0
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=3)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert sync_due_sources() == 1


def test_an_oci_registry_answering_429_holds_the_run_back_for_its_wait(rate_limited_server):
    from tests.factories import RegistryFactory

    registry = RegistryFactory(
        url=rate_limited_server, tls_mode="insecure", chart_source=True, repositories=["charts/x"],
        registry_type="public", username="", secret="",
    )  # fmt: skip
    run = sync(ChartSource.objects.get(registry=registry))
    assert run.status == SyncRun.Status.QUEUED  # held back, not failed (charts/sync/budget.py)
    assert "rate limiting" in run.wait_reason and "120 s" in run.wait_reason
    assert timedelta(seconds=100) < run.not_before - timezone.now() <= timedelta(seconds=121)


def test_a_redelivered_task_does_nothing_the_second_time(helm_repo):
    from tests.chartkit import helm_index, make_chart_archive

    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    run = sync(helm_source(helm_repo))
    finished_at = run.finished_at

    run_sync(run.pk)

    run.refresh_from_db()
    assert run.finished_at == finished_at


def test_a_run_left_running_by_a_dead_worker_is_closed_by_the_next_one(helm_repo):
    from tests.chartkit import helm_index, make_chart_archive

    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    source = helm_source(helm_repo)
    SyncRun.objects.filter(source=source).delete()
    orphan = SyncRun.objects.create(source=source, status=SyncRun.Status.RUNNING)
    # The dead worker's lease has expired.
    ChartSource.objects.filter(pk=source.pk).update(
        lease_owner="dead", lease_expires_at=timezone.now() - timedelta(minutes=1)
    )

    run = sync(source)

    orphan.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert orphan.status == SyncRun.Status.FAILED and "worker stopped" in orphan.error


def test_a_broker_outage_after_sync_now_is_logged_not_a_500(
    admin_client, helm_repo, broker, caplog, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    source = helm_source(helm_repo)
    SyncRun.objects.all().delete()

    broker.down = True
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("charts:chartsource_sync", args=[source.pk]))

    assert response.status_code == 302
    assert SyncRun.objects.get().status == SyncRun.Status.QUEUED
    assert "Could not queue charts.tasks.sync_chart_source" in caplog.text


def test_the_recovery_sends_a_run_that_never_reached_a_worker_again(
    helm_repo, queued_syncs, django_capture_on_commit_callbacks
):
    source = helm_source(helm_repo)
    run = SyncRun.objects.get(source=source)
    queued_syncs.clear()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SyncRun.objects.filter(pk=run.pk).update(queued_at=an_hour_ago, sent_at=an_hour_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_sources() == 0  # the source still has its (lost) queued run
    assert queued_syncs == []
    recover_runs()

    assert queued_syncs == [run.pk]


def test_the_schedule_syncs_again_a_source_whose_run_lost_its_worker(
    helm_repo, queued_syncs, django_capture_on_commit_callbacks
):
    # A worker killed mid-sync left the run "running"; its lease has lapsed, so nothing
    # holds the source: beat must not skip it for ever.
    from tests.chartkit import helm_index, make_chart_archive

    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    source = helm_source(helm_repo)
    SyncRun.objects.all().delete()
    expired = timezone.now() - timedelta(minutes=5)
    stuck = SyncRun.objects.create(
        source=source, status=SyncRun.Status.RUNNING, lease_owner="killed", lease_expires_at=expired
    )
    # The killed worker held the source too; its lease lapsed with it.
    ChartSource.objects.filter(pk=source.pk).update(lease_owner="killed", lease_expires_at=expired)

    with django_capture_on_commit_callbacks(execute=True):
        assert sync_due_sources() == 1

    new = SyncRun.objects.exclude(pk=stuck.pk).get()
    assert queued_syncs == [new.pk]
    run_sync(new.pk)
    stuck.refresh_from_db()
    new.refresh_from_db()
    assert new.status == SyncRun.Status.SUCCEEDED
    assert stuck.status == SyncRun.Status.FAILED and "worker stopped" in stuck.error


def test_the_schedule_skips_a_source_whose_run_is_alive(helm_repo, queued_syncs):
    source = helm_source(helm_repo)
    SyncRun.objects.all().delete()
    SyncRun.objects.create(
        source=source,
        status=SyncRun.Status.RUNNING,
        lease_owner="alive",
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )

    assert sync_due_sources() == 0
