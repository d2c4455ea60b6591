"""One sync of one source, recorded on a :class:`~charts.models.SyncRun`.

The lifecycle is the one every background run has (:mod:`config.runs`): a lease on the
source, so never two syncs of one source at once; a heartbeat while it works; the run
ending succeeded or failed, never "running" forever. What the user sees (status, counts,
"N versions indexed so far", requests made, the error) is written on the run as the
work goes.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.dispatch import Signal
from django.utils import timezone

from charts import files
from charts.helmrepo import HelmRepoError
from charts.models import ChartSource, SyncRun
from charts.sync import budget
from charts.sync.helm import sync_helm_source
from charts.sync.oci import RegistrySync, sync_oci_source
from charts.sync.writer import SyncError, Tally
from config import runs
from registries import budgets, oci

MAX_ERRORS_SHOWN = 5
# Skipped tags kept by name on a run (the count is kept whole).
MAX_SKIPPED_TAGS_KEPT = 50


class CountsRequests(Protocol):
    @property
    def requests_made(self) -> int: ...


def queue_sync(source: ChartSource, *, trigger: str, deep: bool = False) -> SyncRun:
    """A queued run for ``source`` (the one already waiting, if any), sent after commit."""
    run = runs.queue_run(SyncRun, source=source, trigger=trigger, deep=deep)
    if deep and not run.deep:
        SyncRun.objects.filter(pk=run.pk).update(deep=True)
        run.deep = True
    return run


class Progress:
    """The run's live counters: versions indexed and HTTP requests, written as they grow.

    ``save()`` writes them at once (after each batch of versions); the heartbeat writes the
    request count between batches too, so a long tag listing shows its requests as they
    happen. It also checks the lease: a sync whose lease was taken over stops.
    """

    def __init__(self, context: runs.RunContext | None = None) -> None:
        self.context = context
        self.indexed = 0
        self._clients: list[CountsRequests] = []

    def track(self, client: CountsRequests) -> None:
        """Count ``client``'s requests on the run (until it is untracked)."""
        self._clients.append(client)

    @property
    def http_requests(self) -> int:
        return sum(c.requests_made for c in self._clients)

    def counters(self) -> dict[str, int]:
        return {"indexed": self.indexed, "http_requests": self.http_requests}

    def save(self, *, indexed: int = 0) -> None:
        self.indexed += indexed
        if self.context is None:
            return
        self.context.check()
        self.context.progress.update(self.counters())
        run = self.context.run
        SyncRun.objects.filter(pk=run.pk, lease_owner=run.lease_owner).update(**self.counters())


# Sent after a sync run added or changed versions, and after every finished run, for the
# work that follows indexing in the apps above charts (trust checks); ``sender`` is
# SyncRun, ``run`` the finished run.
versions_indexed = Signal()
sync_finished = Signal()


def run_sync(run_id: int, *, shared: RegistrySync | None = None) -> SyncRun | None:
    """Do the queued run ``run_id``; safe to call twice (a redelivered task does nothing).

    ``shared``: the session and pool of a sync of several repositories of one registry
    (:func:`run_registry_syncs`); an OCI run without one opens its own.
    """
    run = runs.execute(SyncRun, run_id, lambda context: _sync(context, shared))
    if run is not None and (run.added or run.updated):
        # values.yaml and README of what is new, latest first; sent once the run is
        # finished, so that what a read finds (a mismatch) is added to a finished run.
        files.queue_reading()
        versions_indexed.send(sender=SyncRun, run=run)
    if run is not None:
        sync_finished.send(sender=SyncRun, run=run)
    return run


def run_registry_syncs(
    run_ids: list[int], *, deadline: float | None = None
) -> dict[int, SyncRun | None]:
    """Do the queued OCI runs ``run_ids``, all of one registry, several at once.

    They share one :class:`~charts.sync.oci.RegistrySync` (one session: connections, TLS
    and auth settled once; at most ``WHARF_CHART_SYNC_CONCURRENCY`` requests and
    connections at a time) and ``WHARF_OCI_SYNC_REPOSITORIES`` repositories are in
    flight at once. Each run is still its own: its lease, heartbeat, progress and
    outcome, so one failing repository fails only its own run. Runs not started by
    ``deadline`` (a ``time.monotonic()`` value) are left queued for their own tasks.
    """
    results: dict[int, SyncRun | None] = {}
    if not run_ids:
        return results
    source = ChartSource.objects.select_related("registry").filter(runs__pk=run_ids[0]).first()
    if source is None or source.registry is None:
        return {run_id: run_sync(run_id) for run_id in run_ids}
    waiting: queue.SimpleQueue[int] = queue.SimpleQueue()
    for run_id in run_ids:
        waiting.put(run_id)
    lock = threading.Lock()

    def worker(shared: RegistrySync) -> None:
        try:
            while deadline is None or time.monotonic() < deadline:
                try:
                    run_id = waiting.get_nowait()
                except queue.Empty:
                    return
                run = run_sync(run_id, shared=shared)
                with lock:
                    results[run_id] = run
        finally:
            connection.close()  # this thread's own database connection

    try:
        shared = RegistrySync(source.registry, settle=len(run_ids) > 1)
    except oci.RegistryError:  # e.g. the SSH tunnel: each run records it on its own
        return {run_id: run_sync(run_id) for run_id in run_ids}
    with shared:
        count = max(1, min(settings.WHARF_OCI_SYNC_REPOSITORIES, len(run_ids)))
        threads = [
            threading.Thread(target=worker, args=(shared,), name=f"oci-repo-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return results


def run_registry_batch(run_id: int) -> SyncRun | None:
    """Do ``run_id`` and, if it is an OCI repository's, the other queued ones of its registry.

    What a worker's task calls: the repositories of a registry queued together (a schedule,
    a changed repository list) sync together through one session. The runs taken along
    finish here; their own tasks find them finished and do nothing.
    """
    source = ChartSource.objects.filter(runs__pk=run_id).first()
    if source is None or not source.is_oci or source.registry_id is None:
        return run_sync(run_id)
    others = list(
        SyncRun.objects.filter(
            status=SyncRun.Status.QUEUED,
            source__registry_id=source.registry_id,
            source__kind=ChartSource.Kind.OCI,
        )
        .exclude(pk=run_id)
        .exclude(not_before__gt=timezone.now())  # held back: their own message comes then
        .order_by("queued_at", "pk")
        .values_list("pk", flat=True)
    )
    # Repositories not started by half the task's time limit are left to their own tasks.
    deadline = time.monotonic() + settings.WHARF_SYNC_TIME_LIMIT / 2
    return run_registry_syncs([run_id, *others], deadline=deadline).get(run_id)


def _sync(context: runs.RunContext, shared: RegistrySync | None = None) -> runs.Outcome:
    run = context.run
    assert isinstance(run, SyncRun)
    now = timezone.now()
    ChartSource.objects.filter(pk=run.source_id).update(last_run=run)
    source = ChartSource.objects.select_related("registry", "helm_repository").get(pk=run.source_id)
    progress = Progress(context)
    # The heartbeat writes the live counters between batches as well.
    context.heartbeat.on_beat = _beat_writer(context, progress, context.heartbeat.on_beat)
    tally = Tally()
    limited: oci.RegistryError | None = None
    try:
        if source.is_oci:
            deep = run.deep or due_for_deep_sync(source, now)
            tally = sync_oci_source(source, progress, deep=deep, shared=shared)
            if deep and not tally.errors:
                ChartSource.objects.filter(pk=source.pk).update(last_deep_sync_at=now)
        else:
            tally = sync_helm_source(source, progress)
    except (SyncError, oci.RegistryError, HelmRepoError) as exc:
        if isinstance(exc, SyncError) and exc.partial is not None:
            tally = exc.partial
        retry_after = exc.retry_after
        if retry_after:
            until = timezone.now() + timedelta(seconds=retry_after)
            ChartSource.objects.filter(pk=source.pk).update(retry_not_before=until)
        tally.errors.insert(0, str(exc))
        limited = budget.rate_limit_of(exc) if source.is_oci else None
    finally:
        if source.is_oci:
            budgets.flush(source.oci_registry.pk)  # what the request pool noted
    fields: dict[str, Any] = {
        "added": tally.added,
        "updated": tally.updated,
        "removed": tally.removed,
        "warnings": summarise_errors(tally.warnings),
        "skipped_tags": tally.skipped[:MAX_SKIPPED_TAGS_KEPT],
        "skipped_count": len(tally.skipped),
        **progress.counters(),
    }
    if limited is not None:
        return budget.held_back(limited, fields)  # not failed: waits for the registry
    if tally.errors:
        return runs.Outcome(runs.RunStatus.FAILED, summarise_errors(tally.errors), fields)
    ChartSource.objects.filter(pk=source.pk).update(
        last_success_at=timezone.now(), retry_not_before=None
    )
    return runs.Outcome(runs.RunStatus.SUCCEEDED, "", fields)


def _beat_writer(context: runs.RunContext, progress: Progress, then):
    def on_beat() -> None:
        context.progress.update(progress.counters())
        budgets.flush()  # rate-limit budgets the request pool noted meanwhile
        if then is not None:
            then()

    return on_beat


def summarise_errors(errors: list[str]) -> str:
    if not errors:
        return ""
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    return "\n".join(shown + ([f"… and {more} more problems."] if more else []))


def due_for_deep_sync(source: ChartSource, now: datetime) -> bool:
    last = source.last_deep_sync_at
    return last is None or now - last >= timedelta(seconds=settings.WHARF_CHART_DEEP_SYNC_INTERVAL)
