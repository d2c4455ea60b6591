"""values.yaml and README of chart versions: read from their archives in the background.

A page view never fetches anything: the chart page shows what was read, or "reading…"
while a worker reads it. Versions are read after they are indexed (the latest version of
each chart first, then newest first) and on demand ("Read now" on the chart page, a
POST), by :func:`read_pending_files` in the ``read_chart_files`` task. Each read is one
bounded download (size limit and deadline in the HTTP layer), claimed by one worker at a
time; a failure is recorded on the version with the time of the next attempt, after a
growing backoff, and after :data:`MAX_ATTEMPTS` attempts the version stays failed (its
message on the page) until the version changes upstream or someone asks again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import BooleanField, Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from charts.archive import ChartArchiveError, ChartFiles, read_chart_archive
from charts.helmrepo import HelmRepoClient, HelmRepoError
from charts.models import ChartVersion, SyncRun
from config import runs
from registries import budgets, oci

log = logging.getLogger(__name__)

TASK = "charts.tasks.read_chart_files"
MAX_ATTEMPTS = 5
# After the 1st, 2nd, 3rd and 4th failed attempt: how long until the next one.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
# How long one worker holds a version it reads (longer than a download's deadline).
CLAIM = timedelta(minutes=10)
# An ECR registry's AWS errors arrive as RegistryError (Registry.connection() turns them).
READ_ERRORS = (ChartArchiveError, HelmRepoError, oci.RegistryError, ValueError)


def pending_versions(now=None) -> QuerySet[ChartVersion]:
    """Versions whose files are due to be read, in the order they are read."""
    now = now or timezone.now()
    due = (
        ChartVersion.objects.filter(
            files_read_at__isnull=True,
            removed_upstream_at__isnull=True,
            files_attempts__lt=MAX_ATTEMPTS,
        )
        .filter(Q(files_next_attempt_at__isnull=True) | Q(files_next_attempt_at__lte=now))
        .filter(Q(files_claimed_until__isnull=True) | Q(files_claimed_until__lt=now))
    )
    latest = Case(
        When(version=F("chart__latest_version"), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    return due.annotate(is_latest=latest).order_by(
        F("files_requested_at").desc(nulls_last=True), "-is_latest", "-indexed_at", "-pk"
    )


def request_files(version: ChartVersion) -> str:
    """ "Read now" from the chart page: put the version first and wake a worker.

    Returns what the page should say. The backoff still holds: asking again does not
    make Wharf hammer a repository that just failed (after the last attempt, asking gives
    it one more).
    """
    now = timezone.now()
    if version.files_read_at is not None:
        return "The chart's files are read."
    if version.files_next_attempt_at and version.files_next_attempt_at > now:
        when = timezone.localtime(version.files_next_attempt_at).strftime("%H:%M")
        return f"The last attempt failed; the next one is at {when}."
    fields: dict[str, object] = {"files_requested_at": now}
    if version.files_attempts >= MAX_ATTEMPTS:
        fields["files_attempts"] = MAX_ATTEMPTS - 1
    ChartVersion.objects.filter(pk=version.pk).update(**fields)
    runs.enqueue_on_commit(TASK, 0)
    return "Reading the chart's files…"


def queue_reading() -> None:
    """Wake a worker to read what is pending (after a sync indexed new versions)."""
    runs.enqueue_on_commit(TASK, 0)


def claim(version_id: int, now=None) -> bool:
    now = now or timezone.now()
    free = Q(files_claimed_until__isnull=True) | Q(files_claimed_until__lt=now)
    return bool(
        ChartVersion.objects.filter(free, pk=version_id, files_read_at__isnull=True).update(
            files_claimed_until=now + CLAIM
        )
    )


def read_files(version: ChartVersion) -> bool:
    """Read one version's values.yaml, values.schema.json and README into the database;
    True on success. A registry whose rate limit is down to its reserve is not asked:
    the read waits for its window (registries/budgets.py), counting no failed attempt."""
    source = version.chart.source
    wait = budgets.wait_for_registry(source.oci_registry.pk) if source.is_oci else None
    if wait is not None:
        ChartVersion.objects.filter(pk=version.pk).update(
            files_next_attempt_at=wait.until, files_claimed_until=None
        )
        return False
    try:
        files = read_chart_archive(
            fetch_archive(version), max_archive_bytes=settings.WHARF_CHART_ARCHIVE_MAX_BYTES
        )
    except READ_ERRORS as exc:
        attempts = version.files_attempts + 1
        retry = BACKOFF[attempts - 1] if attempts <= len(BACKOFF) else None
        ChartVersion.objects.filter(pk=version.pk).update(
            files_error=f"The chart archive could not be read: {exc}",
            files_attempts=attempts,
            files_next_attempt_at=timezone.now() + retry if retry else None,
            files_requested_at=None,
            files_claimed_until=None,
        )
        return False
    warning = content_mismatch(version, files)
    ChartVersion.objects.filter(pk=version.pk).update(
        values_yaml=files.values_yaml or "",
        readme=files.readme or "",
        content_warning=warning,
        values_schema=files.values_schema or "",
        files_error="",
        files_read_at=timezone.now(),
        files_requested_at=None,
        files_claimed_until=None,
    )
    return True


def content_mismatch(version: ChartVersion, files: ChartFiles) -> str:
    """A warning if the archive's own Chart.yaml names another chart or version than the
    source (the OCI config, the index entry) did; also kept on the chart, if it is its
    latest version, and added to the source's last run. "" when they agree."""
    chart = version.chart
    said = (chart.name, version.version)
    found = (files.name, files.version)
    if said == found:
        warning = ""
    else:
        where = (
            f"the registry's config of the tag {version.tag}"
            if chart.source.is_oci
            else "the repository's index.yaml"
        )
        warning = (
            f"{chart.name} {version.version}: the chart archive's own Chart.yaml says "
            f"{files.name} {files.version}, but {where} says {chart.name} "
            f"{version.version}. The values and README shown are the archive's; the "
            "chart was probably packaged or pushed with the wrong version."
        )
        _add_to_last_run(chart.source.last_run_id, warning)
    if version.version == chart.latest_version and chart.latest_warning != warning:
        type(chart).objects.filter(pk=chart.pk).update(latest_warning=warning)
    return warning


MAX_RUN_WARNINGS = 50


def _add_to_last_run(run_id: int | None, warning: str) -> None:
    if run_id is None:
        return
    run = SyncRun.objects.filter(pk=run_id).only("warnings").first()
    if run is None or warning in run.warnings:
        return
    if run.warnings.count("\n") + 1 >= MAX_RUN_WARNINGS:
        return  # bounded: the chart pages still say it
    text = f"{run.warnings}\n{warning}" if run.warnings else warning
    SyncRun.objects.filter(pk=run_id).update(warnings=text)


def read_pending_files(*, limit: int = 200, seconds: float = 240.0) -> int:
    """Read due versions, best first, until none is left, ``limit`` are read, or ``seconds``
    have passed (the task's time limit is longer); returns how many were tried."""
    started = time.monotonic()
    tried = 0
    while tried < limit and time.monotonic() - started < seconds:
        version = (
            pending_versions()
            .select_related("chart__source__registry", "chart__source__helm_repository")
            .first()
        )
        if version is None or not claim(version.pk):
            if version is None:
                break
            continue
        tried += 1
        read_files(version)
    return tried


def fetch_archive(version: ChartVersion) -> bytes:
    source = version.chart.source
    limit = settings.WHARF_CHART_ARCHIVE_MAX_BYTES
    if source.is_oci:
        if not version.archive_digest:
            raise ValueError("the index holds no chart layer for this version.")
        with oci.RegistryClient(source.oci_registry.connection()) as client:
            return client.get_blob(source.api_repository, version.archive_digest, max_bytes=limit)
    if not version.archive_url:
        raise ValueError("the repository index gives no download URL for this version.")
    with HelmRepoClient(source.helm.endpoint()) as client:
        data = client.fetch_archive(version.archive_url, max_bytes=limit)
    expected = version.digest.removeprefix("sha256:").lower()
    if len(expected) == 64 and hashlib.sha256(data).hexdigest() != expected:
        raise ValueError("the archive does not match the digest in index.yaml.")
    return data
