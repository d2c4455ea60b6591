"""Celery tasks for chart indexing: thin wrappers around ``charts.sync``."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charts.models import ChartSource, SyncRun
from charts.push import run_push
from charts.sync import queue_sync, run_sync, send_run


@shared_task(name="charts.tasks.sync_chart_source", acks_late=True, ignore_result=True)
def sync_chart_source(run_id: int) -> None:
    """Run one queued sync; a redelivered task finds it finished and does nothing."""
    run_sync(run_id)


@shared_task(name="charts.tasks.sync_due_sources", ignore_result=True)
def sync_due_sources() -> int:
    """Beat: queue a sync of every active source that is not waiting or backing off."""
    now = timezone.now()
    # A run queued long ago never reached a worker (broker outage, lost message): send it
    # again. Running it twice is harmless: a finished run is not run again.
    lost = SyncRun.objects.filter(
        status=SyncRun.Status.QUEUED,
        queued_at__lt=now - timedelta(seconds=settings.WHARF_CHART_SYNC_INTERVAL),
    ).values_list("pk", flat=True)
    for run_id in lost:
        send_run(run_id)
    sources = (
        ChartSource.objects.active()
        .filter(Q(retry_not_before__isnull=True) | Q(retry_not_before__lte=now))
        .exclude(runs__status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING])
    )
    queued = 0
    for source in sources:
        with transaction.atomic():
            queue_sync(source, trigger=SyncRun.Trigger.SCHEDULE)
        queued += 1
    return queued


@shared_task(name="charts.tasks.push_chart", acks_late=True, ignore_result=True)
def push_chart(push_id: int) -> None:
    """Push one recorded chart upload; a redelivered task finds it finished and does nothing."""
    run_push(push_id)
