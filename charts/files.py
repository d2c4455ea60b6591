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

from charts.archive import ChartArchiveError, read_chart_archive
from charts.helmrepo import HelmRepoClient, HelmRepoError
from charts.models import ChartVersion
from config import runs
from registries import oci

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
    True on success."""
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
    ChartVersion.objects.filter(pk=version.pk).update(
        values_yaml=files.values_yaml or "",
        readme=files.readme or "",
        values_schema=files.values_schema or "",
        files_error="",
        files_read_at=timezone.now(),
        files_requested_at=None,
        files_claimed_until=None,
    )
    return True


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
