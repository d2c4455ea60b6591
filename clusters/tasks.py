"""Celery tasks for pull secrets: thin wrappers around ``clusters.pullsecrets``."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from clusters import pullsecrets, pulltest
from clusters.models import Cluster, ReconcileRun
from config.runs import run_task


@run_task("clusters.tasks.reconcile_cluster_pull_secrets", "WHARF_RECONCILE_TIME_LIMIT")
def reconcile_cluster_pull_secrets(run_id: int) -> None:
    """Do one queued reconcile; a redelivered task finds it finished and does nothing."""
    pullsecrets.run_reconcile(run_id)


@shared_task(
    name="clusters.tasks.reconcile_all_pull_secrets", ignore_result=True, soft_time_limit=300
)
def reconcile_all_pull_secrets() -> int:
    """The scheduled run: one reconcile per active cluster (joining one already waiting)."""
    clusters = Cluster.objects.filter(active=True).values_list("pk", flat=True)
    with transaction.atomic():
        queued = pullsecrets.request_reconcile(
            clusters, trigger=ReconcileRun.Trigger.SCHEDULE, mark_pending=False
        )
    return len(queued)


@run_task("clusters.tasks.check_cluster_pulls", "WHARF_PULL_TEST_TIME_LIMIT")
def check_cluster_pulls(run_id: int) -> None:
    """Do one queued pull test (a target, or a whole cluster); a redelivered task finds it
    finished and does nothing."""
    pulltest.run_pull_test(run_id)
