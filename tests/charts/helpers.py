"""Small builders shared by the chart tests: sources on real servers, and running a sync."""

from __future__ import annotations

import itertools

from charts.models import ChartSource, HelmRepository, SyncRun
from charts.sources import sync_helm_repository_source
from charts.sync import queue_sync, run_sync
from registries.models import Registry
from tests.chartkit import OciPusher, make_chart_archive
from tests.factories import RegistryFactory

_names = itertools.count()


def unique(prefix: str) -> str:
    """A repository or chart name no other test in this session uses."""
    return f"{prefix}-{next(_names)}"


def oci_registry(server, repositories: list[str], **fields) -> Registry:
    """A Registry pointing at a real ``docker-registry`` fixture, marked as a chart source."""
    credentials = {}
    if server.username:
        credentials = {"username": server.username, "secret": server.password}
    else:
        credentials = {"registry_type": Registry.Type.PUBLIC, "username": "", "secret": ""}
    defaults = {
        "url": server.host,
        "tls_mode": Registry.Tls.INSECURE if not server.tls else Registry.Tls.CA,
        "ca_certificate": server.ca_path.read_text() if server.tls else "",
        "chart_source": True,
        "repositories": repositories,
        "push_images": False,
        **credentials,
    }
    defaults.update(fields)
    return RegistryFactory(**defaults)


def source_of(registry: Registry, repository: str) -> ChartSource:
    return ChartSource.objects.get(registry=registry, repository=repository)


def helm_source(server, **fields) -> ChartSource:
    values = {"name": unique("helm"), "url": server.url, "tls_mode": Registry.Tls.INSECURE}
    if getattr(server, "auth", None):
        values.update(
            access=HelmRepository.Access.PRIVATE, username=server.auth[0], password=server.auth[1]
        )
    values.update(fields)
    repository = HelmRepository.objects.create(**values)
    return sync_helm_repository_source(repository, changed=True)


def sync(source: ChartSource, *, deep: bool = False) -> SyncRun:
    """Queue and run one sync in this thread, as the worker would; returns the finished run."""
    run = queue_sync(source, trigger=SyncRun.Trigger.MANUAL, deep=deep)
    run_sync(run.pk)
    run.refresh_from_db()
    return run


def pusher_for(server) -> OciPusher:
    verify = str(server.ca_path) if server.tls else False
    return OciPusher(server.url, server.username, server.password, verify=verify)


def push_versions(
    server, repository: str, name: str, versions: list[str], **chart
) -> dict[str, str]:
    """Push ``name`` at each version; returns version -> manifest digest."""
    pusher = pusher_for(server)
    try:
        return {
            v: pusher.push_chart(repository, v, make_chart_archive(name, v, **chart))
            for v in versions
        }
    finally:
        pusher.close()
