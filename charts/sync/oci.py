"""Indexing the Helm charts of one repository in an OCI registry.

A known tag costs one ``HEAD`` of its manifest (its digest, no body), so that a tag
overwritten in the registry is re-read by the next sync; a new or changed one costs a
manifest and a config blob (read several at a time), never the chart archive. Tags that
are not charts (container images beside them) are remembered by digest and not read
again; a deep sync re-checks those too.

The repositories of one registry synced together share one :class:`RegistrySync`: one
session (its connections, TLS, Basic auth or the tokens of each scope settled once) and
one pool of ``WHARF_CHART_SYNC_CONCURRENCY`` workers for all their requests, so the
registry sees at most that many connections and requests at once, whatever the number
of repositories in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from charts import helmoci
from charts.archive import ChartArchiveError, read_chart_archive
from charts.metadata import MetadataError, normalise_metadata
from charts.models import ChartSource, ChartVersion
from charts.sync.budget import BudgetGuard
from charts.sync.writer import (
    SyncError,
    Tally,
    VersionData,
    VersionWriter,
    mark_removed,
    refresh_charts,
)
from config.http import RequestTally, counting
from registries import budgets, oci

if TYPE_CHECKING:
    from charts.sync.run import Progress

MAX_CONFIG_BYTES = 2**20


class EntryRefused(SyncError):
    """A tag whose chart metadata Helm would not load either: skipped, the rest indexed."""

    def __init__(self, message: str, *, digest: str) -> None:
        super().__init__(message)
        self.digest = digest


@dataclass
class Refused:
    tag: str
    digest: str  # remembered, so the tag is read again only once it changes
    message: str


@dataclass
class NotAChart:
    tag: str
    digest: str


class RegistrySync:
    """What the repositories of one registry share during a sync: a session and a pool.

    ``concurrency`` (default ``WHARF_CHART_SYNC_CONCURRENCY``) bounds both the requests in
    flight and the connections to the registry. A registry that rate-limits one
    repository (429 with ``Retry-After``) is not asked again by the others of this sync
    until that time has passed: they fail at once with the same message and wait time.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, registry: Any, *, concurrency: int | None = None, settle: bool = False
    ) -> None:
        self.registry = registry
        self.registry_id = registry.pk
        self.concurrency = max(1, concurrency or settings.WHARF_CHART_SYNC_CONCURRENCY)
        self.client = oci.RegistryClient(registry.connection(), max_connections=self.concurrency)
        self.budget = BudgetGuard(registry.pk, self.client.host)  # charts/sync/budget.py
        self.pool = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="oci", initializer=budgets.defer_writes
        )
        self._lock = threading.Lock()
        self._rate_limited: tuple[oci.RegistryError, float] | None = None  # (error, until)
        self._settle_lock = threading.Lock()
        self._settled = not settle  # one repository alone needs no ping first

    def __enter__(self) -> RegistrySync:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()
        self.remember_route()

    def remember_route(self) -> None:
        """Store on the registry the scheme that answered (plain HTTP or TLS), so the
        next sync's first request goes straight to it; no write when it is unchanged."""
        plain_http = self.client.speaks_plain_http
        if plain_http is not None and plain_http != self.registry.plain_http:
            self.registry.remember_plain_http(plain_http)

    def settle(self) -> None:
        """``GET /v2/`` once, before the repositories fan out: plain HTTP or TLS and the
        auth scheme are learned by one request, not by each of the first ones at once."""
        if self._settled:
            return
        with self._settle_lock:
            if not self._settled:
                self.client.ping()  # a failure is the run's, and the next run tries again
                self._settled = True
                self.remember_route()

    def noted(self, exc: oci.RegistryError) -> oci.RegistryError:
        """Remember a rate limit for the other repositories; returns ``exc``."""
        if exc.kind == exc.RATE_LIMITED:
            until = time.monotonic() + (exc.retry_after or 0)
            with self._lock:
                self._rate_limited = (exc, until)
        return exc

    def check(self) -> None:
        """Raise the registry's rate limit again while it lasts (or its budget says wait)."""
        self.budget.check()
        with self._lock:
            limited = self._rate_limited
        if limited is None:
            return
        exc, until = limited
        left = until - time.monotonic()
        if left <= 0:
            return
        raise oci.RegistryError(
            str(exc), kind=exc.RATE_LIMITED, host=exc.host, retry_after=round(left, 1)
        )


class RepositoryClient:
    """One repository's view of the shared client: its own requests counted for its run.

    With ``shared``, a rate limit one repository met stops the others' next request too,
    not only their next run: a repository already reading manifests when another got a
    429 does not ask the registry again before its ``Retry-After``.
    """

    def __init__(self, client: oci.RegistryClient, shared: RegistrySync | None = None) -> None:
        self._client = client
        self._shared = shared
        self._tally = RequestTally()

    @property
    def requests_made(self) -> int:
        return self._tally.requests_made

    def _call(self, method: Any, *args: Any, **kw: Any) -> Any:
        if self._shared is None:
            with counting(self._tally):
                return method(*args, **kw)
        self._shared.check()
        try:
            with counting(self._tally):
                return method(*args, **kw)
        except oci.RegistryError as exc:
            raise self._shared.noted(exc) from None

    def list_tags(self, repository: str, **kw: Any) -> list[str]:
        return self._call(self._client.list_tags, repository, **kw)

    def get_manifest(self, repository: str, reference: str) -> oci.Manifest:
        return self._call(self._client.get_manifest, repository, reference)

    def manifest_digest(self, repository: str, reference: str) -> str:
        return self._call(self._client.manifest_digest, repository, reference)

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        return self._call(self._client.get_blob, repository, digest, max_bytes=max_bytes)


def sync_oci_source(
    source: ChartSource, progress: Progress, *, deep: bool, shared: RegistrySync | None = None
) -> Tally:
    """Index the Helm charts in one repository of an OCI registry.

    ``shared`` is the session and pool of a sync of several repositories of the registry;
    without one, this repository gets its own.
    """
    own = shared is None
    if shared is None:
        shared = RegistrySync(source.oci_registry)
    try:
        return _sync_repository(source, progress, deep=deep, shared=shared)
    except oci.RegistryError as exc:
        raise shared.noted(exc) from None
    except SyncError as exc:
        if isinstance(exc.__cause__, oci.RegistryError):
            shared.noted(exc.__cause__)
        raise
    finally:
        if own:
            shared.close()


def _sync_repository(
    source: ChartSource, progress: Progress, *, deep: bool, shared: RegistrySync
) -> Tally:
    repository = source.api_repository
    shared.check()
    client = RepositoryClient(shared.client, shared)
    pool = shared.pool
    progress.track(client)
    with counting(client._tally):  # the first run of the sync counts the ping
        shared.settle()
    tags = client.list_tags(
        repository,
        page_size=settings.WHARF_OCI_TAGS_PAGE_SIZE,
        max_pages=settings.WHARF_OCI_TAGS_MAX_PAGES,
        max_tags=settings.WHARF_OCI_TAGS_MAX,
        deadline=settings.WHARF_OCI_TAGS_DEADLINE,
    )
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
    # The tag list carries no digests: every sync HEADs each known chart tag (within
    # the concurrency bound), so an overwritten tag never shows its old content for
    # longer than one sync. Tags that are not charts are re-checked by a deep sync.
    to_read += changed_tags(
        client, repository, tags, known, ignored, tally, include_ignored=deep, pool=pool
    )

    writer = VersionWriter(source, progress)
    refused_now: set[str] = set()  # named in this run's warnings already
    try:
        for result in read_tags(client, repository, to_read, pool=pool):
            if isinstance(result, NotAChart):
                ignored[result.tag] = result.digest
            elif isinstance(result, VersionData):
                writer.add(result)
            elif isinstance(result, Refused):
                ignored[result.tag] = result.digest
                refused_now.add(result.tag)
                tally.warnings.append(result.message)
            else:
                tally.errors.append(result)
    except oci.RegistryError as exc:
        # The registry went away part-way: keep what was read (good data, and less
        # for the next run), and let the run say how much that was.
        writer.flush()
        refresh_charts(writer.touched)
        raise SyncError(
            str(exc),
            retry_after=exc.retry_after,
            partial=Tally(added=writer.added, updated=writer.updated),
        ) from exc
    writer.flush()

    tally.added += writer.added
    tally.updated += writer.updated
    tally.errors += writer.errors
    tally.warnings += writer.warnings
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
    tally.skipped = sorted(tag for tag in ignored if tag not in refused_now)
    return tally


def changed_tags(
    client, repository, tags, known, ignored, tally: Tally, *, include_ignored: bool, pool: Executor
) -> list[str]:
    """Known tags whose manifest digest changed (a tag was overwritten): HEAD each one.

    ``include_ignored`` also re-checks the tags remembered as not charts (or refused).
    """
    candidates = [
        t
        for t in tags
        if (t in known and not known[t].removed_upstream_at) or (include_ignored and t in ignored)
    ]
    if not candidates:
        return []
    changed = []
    futures = {pool.submit(client.manifest_digest, repository, t): t for t in candidates}
    try:
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
    finally:
        for future in futures:  # the shared pool goes on serving the other repositories
            future.cancel()
    return changed


def read_tags(
    client, repository: str, tags: list[str], *, pool: Executor
) -> Iterable[VersionData | NotAChart | Refused | str]:
    """Read several tags at once; yields each result (or an error text) as it arrives.

    Network-wide failures (registry down, credentials refused, rate limited) stop the
    run; a tag that is broken on its own is reported and the others go on.
    """
    if not tags:
        return
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
            except EntryRefused as exc:
                yield Refused(tag, exc.digest, f"{tag}: {exc}")
            except (SyncError, ChartArchiveError) as exc:
                yield f"{tag}: {exc}"
    finally:
        for future in futures:
            future.cancel()


def read_tag(client: RepositoryClient, repository: str, tag: str) -> VersionData | NotAChart:
    """Manifest, then config blob: the chart's metadata without downloading the chart."""
    manifest = client.get_manifest(repository, tag)
    if not helmoci.is_helm_chart(manifest.body):
        return NotAChart(tag, manifest.digest)
    config = manifest.body["config"]
    layer = helmoci.chart_layer(manifest.body)
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
    try:
        meta = normalise_metadata(meta)
    except MetadataError as exc:
        raise EntryRefused(f"skipped: {exc}.", digest=manifest.digest) from None
    version = helmoci.version_of_tag(tag)
    if meta["version"] != version:
        raise SyncError(f"the tag holds chart version {meta['version']!r}, not {version!r}.")
    size = layer.get("size")
    return VersionData(
        chart=meta["name"],
        version=version,
        fingerprint=manifest.digest,
        metadata=meta,
        tag=tag,
        digest=manifest.digest,
        archive_digest=layer["digest"],
        archive_size=size if isinstance(size, int) else None,
    )
