"""Celery tasks for chart indexing and pushing: thin wrappers around plain functions."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charts import files
from charts.discovery import queue_due_discoveries, run_discovery
from charts.models import ChartSource, SyncRun
from charts.push import run_push
from charts.sync import queue_sync
from charts.sync.run import run_registry_batch
from config.runs import RunStatus, run_task


@run_task("charts.tasks.sync_chart_source", "WHARF_SYNC_TIME_LIMIT")
def sync_chart_source(run_id: int) -> None:
    """Run one queued sync; a redelivered task finds it finished and does nothing.

    An OCI repository's run takes the other queued runs of its registry along (one
    session for all, several repositories at once): their own tasks then do nothing.
    """
    run_registry_batch(run_id)


@run_task("charts.tasks.discover_registry_charts", "WHARF_SYNC_TIME_LIMIT")
def discover_registry_charts(run_id: int) -> None:
    """List one registry indexed for all its repositories; a redelivered task does nothing."""
    run_discovery(run_id)


@shared_task(name="charts.tasks.sync_due_sources", ignore_result=True, soft_time_limit=300)
def sync_due_sources() -> int:
    """Beat: queue a sync of every active source that is not waiting or backing off.

    A source whose run waits, or runs with a live lease, is skipped; a run whose worker
    died holds nothing (its lease lapsed), so its source is scheduled again.
    """
    now = timezone.now()
    busy = SyncRun.objects.filter(
        Q(status=RunStatus.QUEUED) | Q(status=RunStatus.RUNNING, lease_expires_at__gte=now)
    ).values("source_id")
    sources = (
        ChartSource.objects.active()
        .filter(Q(retry_not_before__isnull=True) | Q(retry_not_before__lte=now))
        .exclude(pk__in=busy)
    )
    queued = 0
    for source in sources:
        with transaction.atomic():
            queue_sync(source, trigger=SyncRun.Trigger.SCHEDULE)
        queued += 1
    return queued + queue_due_discoveries(now)


@run_task("charts.tasks.read_chart_files", "WHARF_CHART_FILES_TIME_LIMIT")
def read_chart_files(version_id: int = 0) -> int:
    """Read the values.yaml and README of the versions due, the asked-for ones first.

    ``version_id`` is the version a user asked for (0 after a sync or from beat); the
    task reads every due version either way, within its time budget.
    """
    budget = max(settings.WHARF_CHART_FILES_TIME_LIMIT - 60, 30)
    return files.read_pending_files(seconds=budget)


@run_task("charts.tasks.push_chart", "WHARF_PUSH_TIME_LIMIT")
def push_chart(push_id: int) -> None:
    """Push one recorded chart upload; a redelivered task finds it finished and does nothing."""
    run_push(push_id)
