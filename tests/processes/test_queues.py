"""One queue per kind of work: a slow registry cannot starve pull-secret reconciles.

The routing is checked on the settings; then for real, with two worker processes on
Redis taking distinct queues: a reconcile finishes while a chart sync hangs on an
upstream that drips its index a byte at a time.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils.module_loading import autodiscover_modules

from charts.models import SyncRun
from charts.sync.run import queue_sync
from clusters.models import ReconcileRun
from clusters.pullsecrets import request_reconcile
from config.celery import app
from tests.charts.helpers import helm_source
from tests.clusters.factories import inject
from tests.factories import RegistryFactory
from tests.hostile import Answer, DrippingServer, RecordingServer
from tests.workers import Workers, wait_for


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name, (), {})["queue"].name


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("charts.tasks.sync_chart_source", "sync"),
        ("charts.tasks.read_chart_files", "sync"),
        ("charts.tasks.push_chart", "push"),
        ("clusters.tasks.reconcile_cluster_pull_secrets", "reconcile"),
        ("clusters.tasks.reconcile_all_pull_secrets", "reconcile"),
        ("charts.tasks.sync_due_sources", "celery"),
        ("config.tasks.recover_runs", "celery"),
    ],
)
def test_each_kind_of_work_goes_to_its_own_queue(task_name, queue):
    assert queue_of(task_name) == queue


def test_every_task_wharf_has_is_routed_to_a_queue_a_worker_consumes():
    autodiscover_modules("tasks")
    wharf_tasks = [name for name in app.tasks if not name.startswith("celery.")]
    assert len(wharf_tasks) >= 7
    for name in wharf_tasks:
        assert queue_of(name) in settings.WHARF_QUEUES, name


def test_a_worker_started_without_queues_consumes_every_queue():
    # make run's single worker has no -Q: it must still take every kind of work.
    assert [queue.name for queue in app.amqp.queues.values()] == list(settings.WHARF_QUEUES)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_reconcile_finishes_while_a_sync_hangs_on_a_dripping_upstream(
    tmp_path, broker, add_cluster
):
    workers = Workers(tmp_path, redis_db=11)
    # An index that takes 20 minutes to arrive: the sync worker is stuck in it.
    dripping = DrippingServer(interval=2.0, give_up=120.0)
    try:
        with dripping:
            cluster, fake = add_cluster("prod")
            inject(RegistryFactory(name="acme"))
            source = helm_source(dripping)
            broker.messages.clear()
            broker._taken = 0
            SyncRun.objects.all().delete()
            ReconcileRun.objects.all().delete()

            workers.start("sync-worker", "sync")
            workers.start("reconcile-worker", "reconcile")

            sync_run = queue_sync(source, trigger=SyncRun.Trigger.MANUAL)
            workers.deliver(broker)
            wait_for(lambda: dripping.paths, what="the sync to ask the dripping upstream")
            wait_for(
                lambda: SyncRun.objects.filter(pk=sync_run.pk, status="running").exists(),
                what="the sync to be running",
            )

            (reconcile,) = request_reconcile([cluster.pk])
            workers.deliver(broker)
            finished = wait_for(
                lambda: (
                    ReconcileRun.objects.filter(pk=reconcile.pk, finished_at__isnull=False)
                    .values_list("status", "secrets_created")
                    .first()
                ),
                what="the reconcile to finish",
            )

            assert finished == ("succeeded", 1), workers.log("reconcile-worker")
            assert fake.secret("team-a", "wharf-acme") is not None
            # ... while the sync still hangs on its upstream, on the other worker.
            assert SyncRun.objects.get(pk=sync_run.pk).status == "running"
            assert "Task clusters.tasks.reconcile_cluster_pull_secrets[" not in workers.log(
                "sync-worker"
            )
    finally:
        workers.stop()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_serves_what_its_pool_counted_on_its_own_metrics_port(tmp_path, broker):
    import requests

    from tests.servers.base import free_port

    workers = Workers(tmp_path, redis_db=15)
    port = free_port()
    (tmp_path / "metrics").mkdir()
    with RecordingServer({"/charts/index.yaml": Answer(404, b"no")}) as server:
        source = helm_source(type("Server", (), {"url": server.url("/charts")})())
        SyncRun.objects.all().delete()  # the save's own sync: this test queues its own
        broker.messages.clear()
        broker._taken = 0
        try:
            workers.start("counting", "sync", env={
                "WHARF_WORKER_METRICS_PORT": str(port),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
                "WHARF_METRICS_TOKEN": "worker-scrape-token",
            })  # fmt: skip
            run = queue_sync(source, trigger=SyncRun.Trigger.MANUAL)
            workers.deliver(broker)
            wait_for(
                lambda: SyncRun.objects.filter(pk=run.pk, status="failed").exists(),
                what="the sync to fail on the 404",
            )
            url = f"http://127.0.0.1:{port}/metrics"
            refused = requests.get(url, timeout=10)
            text = requests.get(
                url, headers={"Authorization": "Bearer worker-scrape-token"}, timeout=10
            ).text
        finally:
            workers.stop()
    assert refused.status_code == 401
    expected = f'wharf_chart_sync_runs_total{{outcome="failed",source="{source}"}} 1.0'
    assert expected in text
    assert f'wharf_registry_request_errors_total{{kind="index",registry="{server.host}"}}' in text
