""" "All repositories the registry holds": list the registry, keep its chart sources in step.

One :class:`~charts.models.DiscoveryRun` lists the registry (:mod:`registries.listing`),
and for each repository under its prefixes:

- one that is a source already stays one (its own sync reads its tags);
- a new one is looked at: the tag list, then the manifests of its newest version-like
  tags until one is a Helm chart (or, on ECR, each image's ``artifactMediaType``, with no
  manifest read). One holding a chart becomes a source and syncs; one holding none is
  remembered with the digest of its tag list, and looked at again only once that changes;
- a source whose repository is no longer listed has its charts marked removed upstream
  and is not synced until it is back. Never on a refused, failed or partial listing: the
  run then fails before anything is marked.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charts import helmoci
from charts.models import (
    ChartSource,
    ChartVersion,
    Discovery,
    DiscoveryRun,
    SkippedRepository,
    SyncRun,
)
from charts.semver import is_helm_version, semver_key
from charts.sync import queue_sync
from charts.sync.writer import mark_removed, refresh_charts
from config import runs
from config.http import RequestTally, counting
from registries import oci
from registries.listing import INVALID_NAME, ListedRepository, list_repositories
from registries.models import Registry
from registries.providers import split_url

# A new repository is a chart repository if one of its newest version-like tags is a
# chart: Helm tags are SemVer versions, and a repository holds charts or images, not both.
MAX_MANIFESTS_CHECKED = 10
MAX_SKIPPED_KEPT = 50
# Failures of a whole registry, not of one repository: the run stops.
REGISTRY_WIDE = (
    oci.RegistryError.UNREACHABLE,
    oci.RegistryError.AUTH,
    oci.RegistryError.RATE_LIMITED,
    oci.RegistryError.TLS,
)


def queue_discovery(registry: Registry, *, trigger: str) -> DiscoveryRun:
    """A queued listing of ``registry`` (the one already waiting, if any), sent after commit."""
    discovery, _ = Discovery.objects.get_or_create(registry=registry)
    return runs.queue_run(DiscoveryRun, discovery=discovery, trigger=trigger)


def queue_due_discoveries(now: datetime) -> int:
    """Beat: list again every registry indexed for all its repositories, unless a listing
    of it waits or runs (with a live lease)."""
    busy = DiscoveryRun.objects.filter(
        Q(status=runs.RunStatus.QUEUED)
        | Q(status=runs.RunStatus.RUNNING, lease_expires_at__gte=now)
    ).values("discovery__registry_id")
    registries = Registry.objects.filter(
        chart_source=True, repository_scope=Registry.Scope.ALL
    ).exclude(pk__in=busy)
    queued = 0
    for registry in registries:
        with transaction.atomic():
            queue_discovery(registry, trigger=SyncRun.Trigger.SCHEDULE)
        queued += 1
    return queued


def run_discovery(run_id: int) -> DiscoveryRun | None:
    """Do the queued listing ``run_id``; safe to call twice."""
    return runs.execute(DiscoveryRun, run_id, _discover)


def tags_digest(tags: tuple[str, ...] | list[str]) -> str:
    return "sha256:" + hashlib.sha256("\n".join(sorted(tags)).encode()).hexdigest()


def _discover(context: runs.RunContext) -> runs.Outcome:
    run = context.run
    assert isinstance(run, DiscoveryRun)
    discovery = Discovery.objects.select_related("registry").get(pk=run.discovery_id)
    Discovery.objects.filter(pk=discovery.pk).update(last_run=run)
    registry = discovery.registry
    if not registry.lists_all_repositories:
        return runs.Outcome(runs.RunStatus.SUCCEEDED, "", {})
    tally = RequestTally()
    fields: dict[str, Any] = {}
    try:
        with counting(tally), oci.RegistryClient(registry.connection()) as client:
            listing = list_repositories(registry, client=client)
            fields["method"] = listing.method
            if not listing.listed:
                raise runs.RunFailed(listing.refusal, **fields)
            fields.update(
                _apply_listing(context, discovery, client, listing.repositories, listing.invalid)
            )
    except oci.RegistryError as exc:
        fields["http_requests"] = tally.requests_made
        return runs.Outcome(runs.RunStatus.FAILED, str(exc), fields)
    fields["http_requests"] = tally.requests_made
    Discovery.objects.filter(pk=discovery.pk).update(last_success_at=timezone.now())
    return runs.Outcome(runs.RunStatus.SUCCEEDED, "", fields)


def _apply_listing(
    context: runs.RunContext,
    discovery: Discovery,
    client: oci.RegistryClient,
    listed: list[ListedRepository],
    invalid: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    registry = discovery.registry
    base = split_url(registry.url)[1].strip("/")
    sources = {s.repository: s for s in registry.chart_sources.all()}
    remembered = {r.repository: r for r in discovery.skipped_repositories.all()}
    indexed = added = 0
    skipped: list[dict[str, str]] = [{"repository": n, "reason": INVALID_NAME} for n in invalid]
    for repository in listed:
        context.check()
        name = repository.name
        source = sources.get(name)
        if source is not None:
            indexed += 1
            if source.vanished_at is not None:  # back in the listing: synced again
                ChartSource.objects.filter(pk=source.pk).update(vanished_at=None)
                queue_sync(source, trigger=SyncRun.Trigger.CHANGE)
            continue
        api_name = f"{base}/{name}" if base else name
        try:
            tags = (
                repository.tags
                if repository.tags is not None
                else tuple(client.list_tags(api_name, deadline=settings.WHARF_OCI_TAGS_DEADLINE))
            )
        except oci.RegistryError as exc:
            if exc.kind in REGISTRY_WIDE:
                raise
            skipped.append({"repository": name, "reason": f"its tags could not be read: {exc}"})
            continue
        digest = tags_digest(tags)
        row = remembered.get(name)
        if row is not None and row.tags_digest == digest:
            skipped.append({"repository": name, "reason": row.reason})
            continue
        try:
            reason = chart_absence(client, api_name, tags, repository.media_types)
        except oci.RegistryError as exc:
            if exc.kind in REGISTRY_WIDE:
                raise
            reason = f"its manifests could not be read: {exc}"
            skipped.append({"repository": name, "reason": reason})
            continue
        if reason:
            SkippedRepository.objects.update_or_create(
                discovery=discovery,
                repository=name,
                defaults={"tags_digest": digest, "reason": reason, "checked_at": timezone.now()},
            )
            skipped.append({"repository": name, "reason": reason})
            continue
        with transaction.atomic():
            source, created = ChartSource.objects.get_or_create(
                registry=registry,
                repository=name,
                defaults={"kind": ChartSource.Kind.OCI, "discovered": True},
            )
            SkippedRepository.objects.filter(discovery=discovery, repository=name).delete()
            queue_sync(source, trigger=SyncRun.Trigger.CHANGE)
        added += int(created)
        indexed += 1
    names = {r.name for r in listed}
    # Only now, the listing read whole: what it no longer names.
    vanished = [s for name, s in sources.items() if name not in names and s.vanished_at is None]
    for source in vanished:
        _mark_vanished(source)
    discovery.skipped_repositories.exclude(repository__in=names).delete()
    return {
        "discovered": len(listed),
        "indexed": indexed,
        "added": added,
        "vanished": len(vanished),
        "skipped": len(skipped),
        "skipped_repositories": sorted(skipped, key=lambda s: s["repository"])[:MAX_SKIPPED_KEPT],
    }


def chart_absence(
    client: oci.RegistryClient,
    repository: str,
    tags: tuple[str, ...],
    media_types: dict[str, str] | None,
) -> str:
    """Why ``repository`` holds no Helm chart, or "" when it holds one."""
    if not tags:
        return "it has no tags"
    if media_types and all(media_types.get(t) for t in tags):
        # ECR names each image's config media type: no manifest needs reading.
        if any(media_types[t] == helmoci.HELM_CONFIG_MEDIA_TYPE for t in tags):
            return ""
        return f"none of its {len(tags)} tags is a Helm chart (artifactMediaType)"
    versions = [t for t in tags if is_helm_version(helmoci.version_of_tag(t))]
    if not versions:
        return f"none of its {len(tags)} tags is a chart version (SemVer)"
    newest = sorted(versions, key=lambda t: semver_key(helmoci.version_of_tag(t)), reverse=True)
    checked = newest[:MAX_MANIFESTS_CHECKED]
    for tag in checked:
        manifest = client.find_manifest(repository, tag)
        if manifest is not None and helmoci.is_helm_chart(manifest.body):
            return ""
    if len(checked) == 1:
        return "its one version tag is not a Helm chart"
    return f"none of its newest {len(checked)} version tags is a Helm chart"


def _mark_vanished(source: ChartSource) -> None:
    """The repository left the listing: its charts are removed upstream, it rests."""
    now = timezone.now()
    rows = ChartVersion.objects.filter(chart__source=source, removed_upstream_at__isnull=True)
    gone = list(rows.values_list("pk", flat=True))
    charts = set(rows.values_list("chart_id", flat=True))
    mark_removed(gone)
    refresh_charts(charts)
    ChartSource.objects.filter(pk=source.pk).update(vanished_at=now)
