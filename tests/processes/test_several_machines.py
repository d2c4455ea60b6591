"""Wharf as several processes sharing PostgreSQL and Redis, as on several machines.

Two web processes take the clicks, two workers take the work, through the real broker.
Whatever arrives at once, each object (a chart source, a cluster, a push) is worked on by
one run at a time: the runs' own start and end times never overlap per object, and the
registry's access log shows one tag-list read per sync run, one manifest upload per push.
A worker killed with SIGKILL mid-sync leaves a run that recovery marks failed and a source
the next run can take: nothing stays stuck.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle, pairwise

import pytest
from django.urls import reverse

from charts.models import ChartPush, ChartSource, SyncRun
from clusters.models import ReconcileRun
from config.runs import RunStatus
from tests.chartkit import make_chart_archive
from tests.charts.helpers import helm_source, unique
from tests.charts.pushkit import push_now, push_registry
from tests.clusters.factories import inject
from tests.factories import RegistryFactory
from tests.hostile import DrippingServer
from tests.workers import Web, Workers, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SHORT_LEASES = {"WHARF_RUN_HEARTBEAT_SECONDS": "1", "WHARF_RUN_LEASE_SECONDS": "3"}


def unfinished() -> int:
    active = (RunStatus.QUEUED, RunStatus.RUNNING)
    return sum(
        model.objects.filter(status__in=active).count()
        for model in (SyncRun, ReconcileRun, ChartPush)
    )


def assert_one_at_a_time(runs, what: str) -> None:
    """No two of these runs (of one object) were running at the same time."""
    spans = sorted((run.started_at, run.finished_at) for run in runs)
    for (_, first_end), (second_start, _) in pairwise(spans):
        assert second_start >= first_end, f"two runs of {what} overlapped"


def test_two_webs_and_two_workers_never_run_one_object_twice_at_once(
    tmp_path, broker, add_cluster, registry_factory, django_user_model
):
    # A registry of its own: others' tests expect the shared one's catalog to stay empty.
    server = registry_factory()
    django_user_model.objects.create_superuser("ops", password="ops-password-1")
    prefix = unique("machines")
    names = ["a", "b", "c"]
    registry = push_registry(server, [f"{prefix}/{n}" for n in names], name=prefix)
    for name in names:  # one chart in each repository, pushed before the processes start
        push_now(registry, make_chart_archive(name, "1.0.0"), prefix=prefix)
    sources = list(ChartSource.objects.filter(registry=registry).order_by("repository"))
    clusters = [add_cluster(f"{prefix}-{n}")[0] for n in ("east", "west")]
    inject(RegistryFactory(name=f"{prefix}-pull", url=server.host,
                           registry_type="public", username="", secret=""))  # fmt: skip
    for model in (SyncRun, ReconcileRun):
        model.objects.all().delete()
    log_start = server.log_path.stat().st_size

    workers = Workers(tmp_path, redis_db=12)
    try:
        workers.start("worker-1")
        workers.start("worker-2")
        webs = [Web(workers, "web-1"), Web(workers, "web-2")]
        for web in webs:
            web.sign_in("ops", "ops-password-1")

        clicks = []
        for source in sources:
            clicks += [(reverse("charts:chartsource_sync", args=[source.pk]), None)] * 4
        for cluster in clusters:
            clicks += [(reverse("clusters:cluster_reconcile", args=[cluster.pk]), None)] * 3
        for version in ("2.0.0", "2.1.0"):
            archive = make_chart_archive("a", version)
            files = {"archive": (f"a-{version}.tgz", archive, "application/gzip")}
            clicks.append((reverse("charts:chartpush_add", args=[registry.pk]),
                           {"files": files, "data": {"prefix": prefix}}))  # fmt: skip
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(
                lambda click: click[0].post(click[1][0], **(click[1][1] or {})),
                zip(cycle(webs), clicks),
            ))  # fmt: skip
        assert all(answer.status_code in (200, 302) for answer in answers), [
            (answer.status_code, answer.text[:300])
            for answer in answers
            if answer.status_code >= 400
        ]

        wait_for(lambda: unfinished() == 0, what="every run to finish", timeout=180)
    finally:
        worker_logs = {name: workers.log(name) for name in ("worker-1", "worker-2")}
        workers.stop()

    syncs = SyncRun.objects.filter(source__in=sources)
    reconciles = ReconcileRun.objects.filter(cluster__in=clusters)
    pushes = ChartPush.objects.filter(registry=registry, started_at__isnull=False)
    failed = [
        (run, run.error) for run in [*syncs, *reconciles, *pushes] if run.status != "succeeded"
    ]
    assert failed == []
    assert pushes.filter(version__in=["2.0.0", "2.1.0"]).count() == 2
    for source in sources:
        assert_one_at_a_time(syncs.filter(source=source), str(source))
        assert syncs.filter(source=source).exists()
    for cluster in clusters:
        assert_one_at_a_time(reconciles.filter(cluster=cluster), str(cluster))
    # Both workers took work.
    for name, log in worker_logs.items():
        assert re.search(r"Task \S+ received", log), f"{name} took nothing"

    # The registry saw exactly the requests of the runs that ran, none twice.
    with server.log_path.open("rb") as log:
        log.seek(log_start)
        access = log.read().decode(errors="replace")
    for source in sources:
        reads = len(
            re.findall(rf'"GET /v2/{re.escape(source.repository)}/tags/list\S* HTTP', access)
        )
        assert reads == syncs.filter(source=source).count(), source.repository
    for version in ("2.0.0", "2.1.0"):
        uploads = re.findall(rf'"PUT /v2/{re.escape(prefix)}/a/manifests/{version} HTTP', access)
        assert len(uploads) == 1, version


def test_a_worker_killed_mid_sync_leaves_no_stuck_run(tmp_path, broker):
    workers = Workers(tmp_path, redis_db=13)
    workers.env.update(SHORT_LEASES)
    dripping = DrippingServer(interval=2.0, give_up=60.0)
    try:
        with dripping:
            source = helm_source(dripping)
            SyncRun.objects.all().delete()
            broker.messages.clear()
            broker._taken = 0

            workers.start("doomed", "sync")
            from charts.sync.run import queue_sync

            first = queue_sync(source, trigger=SyncRun.Trigger.MANUAL)
            workers.deliver(broker)
            wait_for(
                lambda: SyncRun.objects.filter(pk=first.pk, status="running").exists(),
                what="the sync to be running on the doomed worker",
            )
            workers.kill("doomed")  # SIGKILL: no shutdown, no last word

            workers.start("survivor")  # every queue, as another machine's worker
            # Beat's recovery (sent as beat sends it), once the dead worker's lease lapsed.
            wait_for(
                lambda: SyncRun.objects.filter(pk=first.pk, lease_expires_at__lt=_now()).exists(),
                what="the dead worker's lease to lapse",
                timeout=30,
            )
            workers.producer.send_task("config.tasks.recover_runs")
            failed = wait_for(
                lambda: SyncRun.objects.filter(pk=first.pk, status="failed").first(),
                what="recovery to close the dead run",
                timeout=60,
            )
            assert failed.error.startswith("The worker stopped before this run finished")
            assert failed.finished_at is not None

            # The source is free again: the next sync is taken by the surviving worker.
            second = queue_sync(source, trigger=SyncRun.Trigger.MANUAL)
            workers.deliver(broker)
            wait_for(
                lambda: SyncRun.objects.filter(pk=second.pk, status="running").exists(),
                what="the next sync to start on the surviving worker",
                timeout=60,
            )
            assert "sync_chart_source" in workers.log("survivor")
    finally:
        workers.stop()


def _now():
    from django.utils import timezone

    return timezone.now()
