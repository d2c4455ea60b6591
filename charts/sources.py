"""Keep the chart sources in step with the registries and Helm repositories they come from.

An OCI registry with "Use as chart repository" is one source per listed repository;
a source whose repository leaves the list (or whose registry stops being a chart
source, or is deleted) is deleted, and its charts leave the store with it.
"""

from __future__ import annotations

from django.db import transaction

from charts.discovery import queue_discovery
from charts.models import ChartSource, HelmRepository, SyncRun
from charts.sync import queue_sync
from registries.listing import wanted_name
from registries.models import Registry


def sync_registry_sources(registry: Registry) -> list[ChartSource]:
    """Create and delete the registry's sources to match its repository list; new ones sync.

    A registry indexed for all its repositories keeps the sources under its prefixes and
    lists itself again (:mod:`charts.discovery`), which makes the new ones.
    """
    if registry.lists_all_repositories:
        prefixes = list(registry.repository_prefixes or [])
        with transaction.atomic():
            outside = [
                s.pk
                for s in registry.chart_sources.all()
                if wanted_name(s.repository, "", prefixes) is None
            ]
            registry.chart_sources.filter(pk__in=outside).delete()
            queue_discovery(registry, trigger=SyncRun.Trigger.CHANGE)
        return []
    wanted = list(dict.fromkeys(registry.repositories)) if registry.chart_source else []
    with transaction.atomic():
        registry.chart_sources.filter(repository__in=wanted).exclude(vanished_at=None).update(
            vanished_at=None
        )
        registry.chart_sources.exclude(repository__in=wanted).delete()
        existing = set(registry.chart_sources.values_list("repository", flat=True))
        created = [
            ChartSource.objects.create(
                kind=ChartSource.Kind.OCI, registry=registry, repository=repo
            )
            for repo in wanted
            if repo not in existing
        ]
        for source in created:
            queue_sync(source, trigger=SyncRun.Trigger.CHANGE)
    return created


def sync_helm_repository_source(repository: HelmRepository, *, changed: bool) -> ChartSource:
    """The repository's one source; a new or changed active repository syncs at once."""
    with transaction.atomic():
        source, created = ChartSource.objects.get_or_create(
            kind=ChartSource.Kind.HELM, helm_repository=repository
        )
        if changed and not created:
            # New URL or credentials: the conditional-GET state belongs to the old ones.
            ChartSource.objects.filter(pk=source.pk).update(
                etag="", last_modified="", content_digest=""
            )
        if repository.active and (created or changed):
            queue_sync(source, trigger=SyncRun.Trigger.CHANGE)
    return source
