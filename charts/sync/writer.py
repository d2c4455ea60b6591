"""Writing what a sync read: one diff of a source's versions against the database, in bulk.

Both kinds of source hand :class:`VersionData` items to a :class:`VersionWriter`; it
creates charts as needed, inserts new versions and updates changed ones in batches, and
counts what it did. A failed or partial run never deletes anything: versions gone from a
complete listing are only marked "removed upstream" (:func:`mark_removed`), and each
touched chart's latest release is copied onto it for the store (:func:`refresh_charts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charts.models import Chart, ChartSource, ChartVersion, TrustStatus
from charts.semver import is_prerelease, semver_key
from charts.sync.bulk import insert_rows, update_rows

if TYPE_CHECKING:
    from charts.sync.run import Progress

WRITE_BATCH = 500


class SyncError(Exception):
    """A sync cannot go on; the message is shown on the run, ``partial`` what it did first."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, partial: Tally | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.partial = partial


@dataclass
class VersionData:
    """One chart version as a source describes it, ready to be written."""

    chart: str
    version: str
    fingerprint: str
    metadata: dict
    tag: str = ""
    digest: str = ""
    archive_url: str = ""
    archive_digest: str = ""
    archive_size: int | None = None

    def fields(self) -> dict:
        meta = self.metadata
        keywords = meta.get("keywords") or []
        return {
            "prerelease": is_prerelease(self.version),
            "app_version": text(meta.get("appVersion"), 255),
            "description": text(meta.get("description"), 5000),
            "icon": text(meta.get("icon"), 1000),
            "keywords": " ".join(text(k, 100) for k in keywords if k)
            if isinstance(keywords, list)
            else "",
            "metadata": meta,
            "fingerprint": self.fingerprint,
            "digest": self.digest,
            "tag": self.tag,
            "archive_url": self.archive_url,
            "archive_digest": self.archive_digest,
            "archive_size": self.archive_size,
            "created": text(meta.get("created"), 64),
        }


@dataclass
class Tally:
    added: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)
    # Entries refused one by one (the rest was indexed): shown on the run, not a failure.
    warnings: list[str] = field(default_factory=list)
    # OCI tags not read: not Helm charts, or refused by an earlier run.
    skipped: list[str] = field(default_factory=list)


def text(value, limit: int) -> str:
    if value is None:
        return ""
    return str(value)[:limit]


class VersionWriter:
    """Writes versions in batches, creating charts as needed, counting what it did."""

    def __init__(self, source: ChartSource, progress: Progress) -> None:
        self.source = source
        self.progress = progress
        self.chart_ids = dict(source.charts.values_list("name", "id"))
        self.existing = {
            (chart_id, version): (pk, fingerprint, removed, archive_url)
            for pk, chart_id, version, fingerprint, removed, archive_url in (
                ChartVersion.objects.filter(chart__source=source).values_list(
                    "id", "chart_id", "version", "fingerprint", "removed_upstream_at", "archive_url"
                )
            )
        }
        self.pending: list[VersionData] = []
        self.touched: set[int] = set()
        self.seen: set[tuple[int, str]] = set()
        self.added = self.updated = 0
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def add(self, item: VersionData) -> None:
        self.pending.append(item)
        if len(self.pending) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        self._ensure_charts({item.chart for item in batch})
        now = timezone.now()
        new: list[dict] = []
        changed: list[ChartVersion] = []
        for item in batch:
            chart_id = self.chart_ids[item.chart]
            key = (chart_id, item.version)
            if key in self.seen:
                self.warnings.append(
                    f"{item.chart} {item.version} is listed twice; kept the first."
                )
                continue
            self.seen.add(key)
            current = self.existing.get(key)
            if current is None:
                new.append(
                    {
                        "chart_id": chart_id,
                        "version": item.version,
                        "indexed_at": now,
                        "updated_at": now,
                        **item.fields(),
                    }
                )
            elif (
                current[1] != item.fingerprint
                or current[2] is not None
                # A moved archive (only its URL changed) must be found where it is now.
                or current[3] != item.archive_url
            ):
                row = ChartVersion(
                    pk=current[0], chart_id=chart_id, version=item.version, **item.fields()
                )
                row.updated_at = now
                row.removed_upstream_at = None
                row.values_yaml = row.readme = row.values_schema = ""
                row.files_error = row.content_warning = ""
                row.files_read_at = row.files_next_attempt_at = None
                row.files_attempts = 0
                # Checked again: its signatures belong to what it was.
                row.trust_status, row.trust_detail, row.trust_method = "", "", ""
                row.trust_signer = row.trust_key = ""
                row.trust_evidence = {}
                row.trust_checked_at = row.trust_retry_at = None
                changed.append(row)
            else:
                continue
            self.touched.add(chart_id)
        with transaction.atomic():
            insert_rows(ChartVersion, new)
            update_rows(ChartVersion, changed, UPDATE_FIELDS)
        self.added += len(new)
        self.updated += len(changed)
        self.progress.save(indexed=len(new) + len(changed))

    def _ensure_charts(self, names: set[str]) -> None:
        missing = [name for name in names if name not in self.chart_ids]
        if not missing:
            return
        Chart.objects.bulk_create(
            [Chart(source=self.source, name=name) for name in missing], ignore_conflicts=True
        )
        self.chart_ids.update(self.source.charts.filter(name__in=missing).values_list("name", "id"))


UPDATE_FIELDS = [
    "prerelease",
    "app_version",
    "description",
    "icon",
    "keywords",
    "metadata",
    "fingerprint",
    "digest",
    "tag",
    "archive_url",
    "archive_digest",
    "archive_size",
    "created",
    "updated_at",
    "removed_upstream_at",
    "values_yaml",
    "readme",
    "values_schema",
    "files_error",
    "content_warning",
    "files_read_at",
    "files_attempts",
    "files_next_attempt_at",
    "trust_status",
    "trust_detail",
    "trust_method",
    "trust_signer",
    "trust_key",
    "trust_evidence",
    "trust_checked_at",
    "trust_retry_at",
]


def apply_listing(
    source: ChartSource,
    entries: Iterable[VersionData],
    progress: Progress,
    *,
    keep: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
) -> Tally:
    """Make the source's versions match a complete listing (a Helm index).

    ``entries`` is read once, as it comes (a Helm index is streamed chart by chart).
    ``keep`` names (chart, version) pairs the listing holds but refused: what was indexed
    for them earlier is left as it was, not marked removed (it is read after ``entries``).
    """
    writer = VersionWriter(source, progress)
    for item in entries:
        writer.add(item)
    writer.flush()
    tally = Tally(
        added=writer.added, updated=writer.updated, errors=writer.errors, warnings=writer.warnings
    )
    if not tally.errors:
        listed = writer.seen | {
            (writer.chart_ids[chart], version)
            for chart, version in keep
            if chart in writer.chart_ids
        }
        gone = [
            (pk, key[0])
            for key, (pk, _fp, removed, _url) in writer.existing.items()
            if key not in listed and removed is None
        ]
        tally.removed = mark_removed([pk for pk, _ in gone])
        writer.touched.update(chart_id for _, chart_id in gone)
    refresh_charts(writer.touched)
    return tally


def mark_removed(version_ids: list[int]) -> int:
    now = timezone.now()
    for start in range(0, len(version_ids), WRITE_BATCH):
        ChartVersion.objects.filter(pk__in=version_ids[start : start + WRITE_BATCH]).update(
            removed_upstream_at=now, updated_at=now
        )
    return len(version_ids)


def refresh_charts(chart_ids: Iterable[int]) -> None:
    """Copy each chart's latest release (highest SemVer, releases over pre-releases).

    A source set to show only verified versions (``ChartSource.verified_only``) counts only
    those: a chart with none is out of the store (no latest version) until one is verified.
    """
    ids = sorted(set(chart_ids))
    for start in range(0, len(ids), WRITE_BATCH):
        chunk = ids[start : start + WRITE_BATCH]
        best: dict[int, tuple] = {}
        counts: dict[int, int] = dict.fromkeys(chunk, 0)
        rows = (
            ChartVersion.objects.filter(chart_id__in=chunk, removed_upstream_at__isnull=True)
            .exclude(Q(chart__source__verified_only=True) & ~Q(trust_status=TrustStatus.VERIFIED))
            .values_list(
                "chart_id",
                "version",
                "prerelease",
                "app_version",
                "description",
                "icon",
                "keywords",
                "content_warning",
                "trust_status",
            )
        )
        for row in rows:
            chart_id, version, prerelease = row[0], row[1], row[2]
            counts[chart_id] += 1
            key = (not prerelease, semver_key(version))
            if chart_id not in best or key > best[chart_id][0]:
                best[chart_id] = (key, row)
        charts = []
        for chart_id in chunk:
            chart = Chart(pk=chart_id, version_count=counts[chart_id])
            if chart_id in best:
                _, (_, version, _, app_version, description, icon, keywords, warning, trust) = best[
                    chart_id
                ]
                chart.latest_version, chart.app_version = version, app_version
                chart.description, chart.icon, chart.keywords = description, icon, keywords
                chart.latest_warning = warning
                chart.latest_trust = trust
            charts.append(chart)
        update_rows(
            Chart,
            charts,
            [
                "latest_version",
                "app_version",
                "description",
                "icon",
                "keywords",
                "latest_warning",
                "latest_trust",
                "version_count",
            ],
        )
