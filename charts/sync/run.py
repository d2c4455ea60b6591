"""One sync of one source, recorded on a :class:`~charts.models.SyncRun`.

Never two syncs of one source at once: a lease on the source row, taken with one
conditional UPDATE, so it holds across workers and processes on SQLite and PostgreSQL.
What the user sees (status, counts, "N versions indexed so far", the error) is written
on the run as the work goes.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charts.helmrepo import HelmRepoError
from charts.models import ChartSource, SyncRun
from charts.sync.helm import sync_helm_source
from charts.sync.oci import sync_oci_source
from charts.sync.writer import SyncError, Tally
from registries import oci

log = logging.getLogger(__name__)

LOCK_LEASE = timedelta(minutes=10)
MAX_ERRORS_SHOWN = 5


def queue_sync(source: ChartSource, *, trigger: str, deep: bool = False) -> SyncRun:
    """A queued run for ``source`` (the one already waiting, if any), sent after commit."""
    waiting = source.runs.filter(status=SyncRun.Status.QUEUED).first()
    if waiting is not None:
        if deep and not waiting.deep:
            SyncRun.objects.filter(pk=waiting.pk).update(deep=True)
            waiting.deep = True
        return waiting
    run = SyncRun.objects.create(source=source, trigger=trigger, deep=deep)
    transaction.on_commit(lambda: send_run(run.pk))
    return run


def send_run(run_id: int) -> None:
    """Hand a queued run to the broker. The save before it has committed: a broker outage
    is logged, not a 500, and the schedule sends the run again later."""
    from charts import tasks

    try:
        tasks.sync_chart_source.delay(run_id)
    except Exception as exc:
        log.warning("Could not queue chart sync run %s: %s", run_id, exc)


def acquire_lock(source_id: int) -> str | None:
    """Take the source's sync lease; ``None`` if another live sync holds it."""
    owner = uuid.uuid4().hex
    now = timezone.now()
    taken = (
        ChartSource.objects.filter(pk=source_id)
        .filter(Q(lock_expires_at__isnull=True) | Q(lock_expires_at__lt=now))
        .update(lock_owner=owner, lock_expires_at=now + LOCK_LEASE)
    )
    return owner if taken else None


def renew_lock(source_id: int, owner: str) -> None:
    ChartSource.objects.filter(pk=source_id, lock_owner=owner).update(
        lock_expires_at=timezone.now() + LOCK_LEASE
    )


def release_lock(source_id: int, owner: str) -> None:
    ChartSource.objects.filter(pk=source_id, lock_owner=owner).update(
        lock_owner="", lock_expires_at=None
    )


class Progress:
    """Writes the run's counters as the work goes (and keeps the lease alive)."""

    def __init__(self, run: SyncRun, owner: str) -> None:
        self.run = run
        self.owner = owner
        self.http_requests = 0

    def save(self, *, indexed: int = 0) -> None:
        self.run.indexed += indexed
        self.run.http_requests = self.http_requests
        SyncRun.objects.filter(pk=self.run.pk).update(
            indexed=self.run.indexed, http_requests=self.http_requests
        )
        renew_lock(self.run.source_id, self.owner)


# --- one run --------------------------------------------------------------------------


def run_sync(run_id: int) -> SyncRun | None:
    """Do the queued run ``run_id``; safe to call twice (a redelivered task does nothing)."""
    run = SyncRun.objects.select_related("source").filter(pk=run_id).first()
    if run is None or run.finished:
        return run
    source = run.source
    owner = acquire_lock(source.pk)
    if owner is None:
        # Another sync of this source is running: this run stays queued, and that sync
        # sends it when it ends (so a push or a "Sync now" made meanwhile is not lost).
        return run
    try:
        return _run_locked(run, source, owner)
    finally:
        release_lock(source.pk, owner)
        waiting = (
            source.runs.filter(status=SyncRun.Status.QUEUED)
            .exclude(pk=run_id)
            .values_list("pk", flat=True)
            .first()
        )
        if waiting is not None:
            send_run(waiting)


def _run_locked(run: SyncRun, source: ChartSource, owner: str) -> SyncRun:
    # A run still "running" while we hold the lock lost its worker: say so.
    source.runs.filter(status=SyncRun.Status.RUNNING).exclude(pk=run.pk).update(
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        error="The worker stopped before this run finished; a later run took over.",
    )
    now = timezone.now()
    run.status, run.started_at = SyncRun.Status.RUNNING, now
    run.save(update_fields=["status", "started_at"])
    ChartSource.objects.filter(pk=source.pk).update(last_run=run)
    source = ChartSource.objects.select_related("registry", "helm_repository").get(pk=source.pk)
    progress = Progress(run, owner)
    tally = Tally()
    try:
        if source.is_oci:
            deep = run.deep or due_for_deep_sync(source, now)
            tally = sync_oci_source(source, progress, deep=deep)
            if deep and not tally.errors:
                ChartSource.objects.filter(pk=source.pk).update(last_deep_sync_at=now)
        else:
            tally = sync_helm_source(source, progress)
    except (SyncError, oci.RegistryError, HelmRepoError) as exc:
        tally = getattr(exc, "partial", None) or tally
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            until = timezone.now() + timedelta(seconds=retry_after)
            ChartSource.objects.filter(pk=source.pk).update(retry_not_before=until)
        tally.errors.insert(0, str(exc))
        return finish(run, SyncRun.Status.FAILED, tally=tally, progress=progress)
    except Exception as exc:  # a bug must not leave the run "running" forever
        log.exception("chart sync of source %s failed unexpectedly", source.pk)
        tally.errors.insert(0, f"Unexpected error ({type(exc).__name__}); see the worker log.")
        return finish(run, SyncRun.Status.FAILED, tally=tally, progress=progress)
    status = SyncRun.Status.FAILED if tally.errors else SyncRun.Status.SUCCEEDED
    if not tally.errors:
        ChartSource.objects.filter(pk=source.pk).update(
            last_success_at=timezone.now(), retry_not_before=None
        )
    return finish(run, status, tally=tally, progress=progress)


def finish(
    run: SyncRun,
    status: str,
    error: str = "",
    *,
    tally: Tally | None = None,
    progress: Progress | None = None,
) -> SyncRun:
    if tally is not None:
        run.added, run.updated, run.removed = tally.added, tally.updated, tally.removed
        error = error or summarise_errors(tally.errors)
    if progress is not None:
        run.http_requests = progress.http_requests
    run.status, run.error, run.finished_at = status, error, timezone.now()
    run.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "added",
            "updated",
            "removed",
            "http_requests",
        ]
    )
    return run


def summarise_errors(errors: list[str]) -> str:
    if not errors:
        return ""
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    return "\n".join(shown + ([f"… and {more} more problems."] if more else []))


def due_for_deep_sync(source: ChartSource, now) -> bool:
    last = source.last_deep_sync_at
    return last is None or now - last >= timedelta(seconds=settings.WHARF_CHART_DEEP_SYNC_INTERVAL)
