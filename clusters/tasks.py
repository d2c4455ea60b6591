"""Celery tasks for pull secrets: thin wrappers around ``clusters.pullsecrets``."""

from __future__ import annotations

import logging

from celery import shared_task

from clusters import pullsecrets
from clusters.models import Cluster

log = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def reconcile_cluster_pull_secrets(cluster_id: int) -> None:
    """Reconcile one cluster's pull secrets; a cluster that is gone is nothing to do."""
    result = pullsecrets.reconcile_cluster(cluster_id)
    if result is not None:
        log.info(
            "Reconciled cluster %s: %s, %d service accounts updated, %d failed",
            cluster_id,
            dict(result.secrets),
            result.service_accounts_updated,
            result.failed,
        )


@shared_task(ignore_result=True)
def reconcile_all_pull_secrets() -> None:
    """The scheduled run: one reconcile task per active cluster."""
    for pk in Cluster.objects.filter(active=True).values_list("pk", flat=True):
        reconcile_cluster_pull_secrets.delay(pk)
