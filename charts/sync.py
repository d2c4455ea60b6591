"""Chart indexing: one sync of one source, OCI or Helm, recorded on a :class:`SyncRun`.

Plain functions; the Celery task only calls :func:`run_sync`. The rules that matter:

- never two syncs of one source at once: a lease on the source row, taken with one
  conditional UPDATE, so it holds across workers and processes on SQLite and PostgreSQL;
- what the user sees (status, counts, "N versions indexed so far", the error) is written
  on the run as the work goes;
- a failed or partial run never deletes or hides what an earlier run indexed; a version
  that disappears upstream is marked, after a complete listing, not dropped;
- OCI: a known tag costs nothing, a new one a manifest and a config blob (read several
  at a time), never the chart archive; a deep sync re-checks known tags with HEAD;
- Helm: a conditional GET, then a digest check, then one diff of the whole index against
  the database, written in bulk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta

import yaml
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charts.archive import ChartArchiveError, read_chart_archive
from charts.helmrepo import HelmEndpoint, HelmRepoClient, HelmRepoError
from charts.models import Chart, ChartSource, ChartVersion, SyncRun
from charts.semver import is_prerelease, is_semver, semver_key
from registries import oci
from registries.aws import AwsError

log = logging.getLogger(__name__)

HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_MEDIA_TYPES = (
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    "application/tar+gzip",  # charts pushed by Helm 3.0-3.7 experimental OCI support
)
MAX_CONFIG_BYTES = 2**20
LOCK_LEASE = timedelta(minutes=10)
WRITE_BATCH = 500
MAX_ERRORS_SHOWN = 5

try:  # the C loader is many times faster on a big index.yaml
    YamlLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    YamlLoader = yaml.SafeLoader


class SyncError(Exception):
    """A sync cannot go on; the message is shown on the run."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
class NotAChart:
    tag: str
    digest: str


@dataclass
class Tally:
    added: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


def text(value, limit: int) -> str:
    if value is None:
        return ""
    return str(value)[:limit]


# --- queueing and the lock ------------------------------------------------------------


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
    except AwsError as exc:
        tally.errors.insert(0, f"AWS did not issue an ECR token: {exc}")
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


# --- OCI ------------------------------------------------------------------------------


def sync_oci_source(source: ChartSource, progress: Progress, *, deep: bool) -> Tally:
    """Index the Helm charts in one repository of an OCI registry."""
    repository = source.api_repository
    client = oci.RegistryClient(source.registry.connection())
    try:
        tags = client.list_tags(repository, page_size=settings.WHARF_OCI_TAGS_PAGE_SIZE)
        progress.http_requests = client.requests_made
        progress.save()

        known = {
            row.tag: row
            for row in ChartVersion.objects.filter(chart__source=source).only(
                "id", "tag", "fingerprint", "removed_upstream_at", "chart_id", "version"
            )
        }
        ignored: dict[str, str] = dict(source.ignored_tags or {})
        listed = set(tags)
        to_read = [
            t
            for t in tags
            if t not in ignored and (t not in known or known[t].removed_upstream_at is not None)
        ]
        tally = Tally()
        if deep:
            to_read += changed_tags(client, repository, tags, known, ignored, tally)
            progress.http_requests = client.requests_made

        writer = VersionWriter(source, progress)
        try:
            for result in read_tags(client, repository, to_read):
                if isinstance(result, NotAChart):
                    ignored[result.tag] = result.digest
                elif isinstance(result, VersionData):
                    writer.add(result)
                else:
                    tally.errors.append(result)
                progress.http_requests = client.requests_made
        except oci.RegistryError as exc:
            # The registry went away part-way: keep what was read (good data, and less
            # for the next run), and let the run say how much that was.
            writer.flush()
            refresh_charts(writer.touched)
            exc.partial = Tally(added=writer.added, updated=writer.updated)
            raise
        writer.flush()
    finally:
        progress.http_requests = client.requests_made
        client.close()

    tally.added += writer.added
    tally.updated += writer.updated
    tally.errors += writer.errors
    if not tally.errors:
        gone = [
            row.pk
            for tag, row in known.items()
            if tag not in listed and not row.removed_upstream_at
        ]
        tally.removed = mark_removed(gone)
        writer.touched.update(row.chart_id for tag, row in known.items() if tag not in listed)
    refresh_charts(writer.touched)
    ignored = {tag: digest for tag, digest in ignored.items() if tag in listed}
    if ignored != (source.ignored_tags or {}):
        ChartSource.objects.filter(pk=source.pk).update(ignored_tags=ignored)
    return tally


def changed_tags(client, repository, tags, known, ignored, tally: Tally) -> list[str]:
    """Known tags whose manifest digest changed (a tag was overwritten): HEAD each one."""
    candidates = [
        t for t in tags if (t in known and not known[t].removed_upstream_at) or t in ignored
    ]
    changed = []
    with ThreadPoolExecutor(max_workers=settings.WHARF_CHART_SYNC_CONCURRENCY) as pool:
        futures = {pool.submit(client.manifest_digest, repository, t): t for t in candidates}
        for future in as_completed(futures):
            tag = futures[future]
            try:
                digest = future.result()
            except oci.RegistryError as exc:
                if exc.kind in (exc.UNREACHABLE, exc.AUTH, exc.RATE_LIMITED):
                    raise
                tally.errors.append(f"{tag}: {exc}")
                continue
            before = known[tag].fingerprint if tag in known else ignored.get(tag)
            if digest and digest != before:
                ignored.pop(tag, None)
                changed.append(tag)
    return changed


def read_tags(client, repository: str, tags: list[str]) -> Iterable[VersionData | NotAChart | str]:
    """Read several tags at once; yields each result (or an error text) as it arrives.

    Network-wide failures (registry down, credentials refused, rate limited) stop the
    run; a tag that is broken on its own is reported and the others go on.
    """
    if not tags:
        return
    with ThreadPoolExecutor(max_workers=settings.WHARF_CHART_SYNC_CONCURRENCY) as pool:
        futures = {pool.submit(read_tag, client, repository, tag): tag for tag in tags}
        try:
            for future in as_completed(futures):
                tag = futures[future]
                try:
                    yield future.result()
                except oci.RegistryError as exc:
                    if exc.kind in (exc.UNREACHABLE, exc.AUTH, exc.RATE_LIMITED, exc.TLS):
                        raise
                    yield f"{tag}: {exc}"
                except (SyncError, ChartArchiveError) as exc:
                    yield f"{tag}: {exc}"
        finally:
            for future in futures:
                future.cancel()


def read_tag(client: oci.RegistryClient, repository: str, tag: str) -> VersionData | NotAChart:
    """Manifest, then config blob: the chart's metadata without downloading the chart."""
    manifest = client.get_manifest(repository, tag)
    config = manifest.body.get("config")
    if not isinstance(config, dict) or config.get("mediaType") != HELM_CONFIG_MEDIA_TYPE:
        return NotAChart(tag, manifest.digest)
    layers = manifest.body.get("layers")
    layer = next(
        (
            layer
            for layer in (layers if isinstance(layers, list) else [])
            if isinstance(layer, dict) and layer.get("mediaType") in HELM_CHART_MEDIA_TYPES
        ),
        None,
    )
    if layer is None or not isinstance(layer.get("digest"), str):
        raise SyncError("the manifest has a Helm config but no chart layer.")
    if not isinstance(config.get("digest"), str):
        raise SyncError("the manifest's config has no digest.")
    raw = client.get_blob(repository, config["digest"], max_bytes=MAX_CONFIG_BYTES)
    try:
        meta = json.loads(raw)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise SyncError("the Helm config blob is not a JSON object.")
    if not meta.get("name") or not meta.get("version"):
        # Some tools push an empty config; then Chart.yaml in the archive is the only truth.
        archive = client.get_blob(
            repository, layer["digest"], max_bytes=settings.WHARF_CHART_ARCHIVE_MAX_BYTES
        )
        meta = read_chart_archive(
            archive, max_archive_bytes=settings.WHARF_CHART_ARCHIVE_MAX_BYTES
        ).chart
    version = tag.replace("_", "+")  # OCI tags cannot hold "+"; Helm writes "_"
    if str(meta.get("version")) != version:
        raise SyncError(f"the tag holds chart version {meta.get('version')!r}, not {version!r}.")
    if not is_semver(version):
        raise SyncError(f"{version!r} is not a SemVer 2 version.")
    size = layer.get("size")
    return VersionData(
        chart=text(meta.get("name"), 255),
        version=version,
        fingerprint=manifest.digest,
        metadata=meta,
        tag=tag,
        digest=manifest.digest,
        archive_digest=layer["digest"],
        archive_size=size if isinstance(size, int) else None,
    )


# --- Helm -----------------------------------------------------------------------------


def helm_endpoint(source: ChartSource) -> HelmEndpoint:
    repo = source.helm_repository
    tls, ca = source.tls()
    return HelmEndpoint(
        url=repo.url,
        username=repo.username if repo.is_private else "",
        password=repo.password if repo.is_private else "",
        tls=tls,
        ca_pem=ca,
        timeout=settings.WHARF_REGISTRY_TIMEOUT,
    )


def sync_helm_source(source: ChartSource, progress: Progress) -> Tally:
    """Index a classic Helm repository from its ``index.yaml``."""
    endpoint = helm_endpoint(source)
    with HelmRepoClient(endpoint) as client:
        try:
            response = client.fetch_index(
                etag=source.etag,
                last_modified=source.last_modified,
                max_bytes=settings.WHARF_HELM_INDEX_MAX_BYTES,
            )
        finally:
            progress.http_requests = client.requests_made
    if response.not_modified:
        return Tally()
    digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
    state = {"etag": response.etag, "last_modified": response.last_modified}
    if digest == source.content_digest:
        ChartSource.objects.filter(pk=source.pk).update(**state)
        return Tally()
    entries = parse_index(response.body, endpoint)
    tally = apply_listing(source, entries, progress)
    if not tally.errors:
        # Only a complete import may let the next run skip this content.
        ChartSource.objects.filter(pk=source.pk).update(content_digest=digest, **state)
    return tally


# Cheap first look: an alias is "*name" after a space, "-", "[", "{", "," or ":". Text such
# as "*bold*" in a description also matches; the event scan below then decides.
_MAYBE_ALIAS = re.compile(rb"[\s\[{,:-]\*[^\s*]")


def uses_aliases(body: bytes) -> bool:
    """Whether the YAML holds an alias, found by the parser's events (nothing is expanded)."""
    return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(body, Loader=YamlLoader))


def parse_index(body: bytes, endpoint: HelmEndpoint) -> list[VersionData]:
    """The versions in an ``index.yaml``; a malformed index raises :class:`SyncError`."""
    try:
        if _MAYBE_ALIAS.search(body) and uses_aliases(body):
            raise SyncError(
                "index.yaml uses YAML aliases (*name), which Helm never writes; it is refused "
                "so that a crafted index cannot expand to fill the worker's memory."
            )
        document = yaml.load(body, Loader=YamlLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SyncError(f"index.yaml is not valid YAML{where}: {exc.problem}.") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise SyncError(f"index.yaml is not valid YAML: {exc}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("entries"), dict):
        raise SyncError(
            "index.yaml has no “entries” mapping, so it is not a Helm repository index."
        )
    versions: list[VersionData] = []
    for name, items in document["entries"].items():
        if not isinstance(name, str) or not isinstance(items, list):
            raise SyncError(f"index.yaml entry {name!r} is not a list of chart versions.")
        for item in items:
            if not isinstance(item, dict):
                raise SyncError(f"index.yaml entry {name!r} holds something that is not a version.")
            version = item.get("version")
            if not isinstance(version, str | int | float) or not str(version):
                raise SyncError(
                    f"index.yaml entry {name!r} has a version without a version number."
                )
            version = str(version)
            urls = item.get("urls") or []
            url = urls[0] if isinstance(urls, list) and urls and isinstance(urls[0], str) else ""
            digest = text(item.get("digest"), 100)
            created = item.get("created")
            meta = dict(item)
            meta.pop("urls", None)
            if created is not None and not isinstance(created, str):
                meta["created"] = (
                    created.isoformat() if hasattr(created, "isoformat") else str(created)
                )
            if digest:
                fingerprint = f"{digest}|{meta.get('created', '')}"
            else:
                fingerprint = hashlib.sha256(
                    json.dumps(meta, sort_keys=True, default=str).encode()
                ).hexdigest()
            versions.append(
                VersionData(
                    chart=name[:255],
                    version=version[:255],
                    fingerprint=fingerprint[:100],
                    metadata=meta,
                    digest=digest,
                    archive_url=endpoint.resolve(url)[:1000] if url else "",
                )
            )
    return versions


# --- writing --------------------------------------------------------------------------


class VersionWriter:
    """Writes versions in batches, creating charts as needed, counting what it did."""

    def __init__(self, source: ChartSource, progress: Progress) -> None:
        self.source = source
        self.progress = progress
        self.chart_ids = dict(source.charts.values_list("name", "id"))
        self.existing = {
            (chart_id, version): (pk, fingerprint, removed)
            for pk, chart_id, version, fingerprint, removed in ChartVersion.objects.filter(
                chart__source=source
            ).values_list("id", "chart_id", "version", "fingerprint", "removed_upstream_at")
        }
        self.pending: list[VersionData] = []
        self.touched: set[int] = set()
        self.seen: set[tuple[int, str]] = set()
        self.added = self.updated = 0
        self.errors: list[str] = []

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
        new, changed = [], []
        for item in batch:
            chart_id = self.chart_ids[item.chart]
            key = (chart_id, item.version)
            if key in self.seen:
                self.errors.append(f"{item.chart} {item.version} is listed twice; kept the first.")
                continue
            self.seen.add(key)
            current = self.existing.get(key)
            if current is None:
                new.append(
                    ChartVersion(
                        chart_id=chart_id,
                        version=item.version,
                        indexed_at=now,
                        updated_at=now,
                        **item.fields(),
                    )
                )
            elif current[1] != item.fingerprint or current[2] is not None:
                row = ChartVersion(
                    pk=current[0], chart_id=chart_id, version=item.version, **item.fields()
                )
                row.updated_at = now
                row.removed_upstream_at = None
                row.values_yaml = row.readme = row.files_error = ""
                row.files_read_at = None
                changed.append(row)
            else:
                continue
            self.touched.add(chart_id)
        with transaction.atomic():
            ChartVersion.objects.bulk_create(new, batch_size=WRITE_BATCH)
            if changed:
                ChartVersion.objects.bulk_update(changed, UPDATE_FIELDS, batch_size=WRITE_BATCH)
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
    "files_error",
    "files_read_at",
]


def apply_listing(source: ChartSource, entries: list[VersionData], progress: Progress) -> Tally:
    """Make the source's versions match a complete listing (a Helm index)."""
    writer = VersionWriter(source, progress)
    for item in entries:
        writer.add(item)
    writer.flush()
    tally = Tally(added=writer.added, updated=writer.updated, errors=writer.errors)
    if not tally.errors:
        listed = {(writer.chart_ids[e.chart], e.version) for e in entries}
        gone = [
            (pk, key[0])
            for key, (pk, _fp, removed) in writer.existing.items()
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
    """Copy each chart's latest release (highest SemVer, releases over pre-releases)."""
    ids = sorted(set(chart_ids))
    for start in range(0, len(ids), WRITE_BATCH):
        chunk = ids[start : start + WRITE_BATCH]
        best: dict[int, tuple] = {}
        counts: dict[int, int] = dict.fromkeys(chunk, 0)
        rows = ChartVersion.objects.filter(
            chart_id__in=chunk, removed_upstream_at__isnull=True
        ).values_list(
            "chart_id", "version", "prerelease", "app_version", "description", "icon", "keywords"
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
                _, (_, version, _, app_version, description, icon, keywords) = best[chart_id]
                chart.latest_version, chart.app_version = version, app_version
                chart.description, chart.icon, chart.keywords = description, icon, keywords
            charts.append(chart)
        Chart.objects.bulk_update(
            charts,
            ["latest_version", "app_version", "description", "icon", "keywords", "version_count"],
        )
