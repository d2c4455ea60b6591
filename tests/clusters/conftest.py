"""Emulated Kubernetes clusters (kmock over HTTP on loopback) and pull-secret fixtures.

Generic real-server fixtures for the clusters suite live here (not in
tests/servers/): one asyncio loop per session serves every emulator; each test
starts the clusters it needs and they stop when it ends.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from clusters.models import Cluster
from tests.clusters.emulator import EmulatorLoop, FakeCluster
from tests.clusters.factories import ClusterFactory, EnvironmentFactory


@pytest.fixture(scope="session")
def emulator_loop() -> Iterator[EmulatorLoop]:
    try:
        import kmock  # noqa: F401
    except ImportError:
        from tests.servers.base import service_unavailable

        service_unavailable("kmock is not installed")
    loop = EmulatorLoop()
    yield loop
    loop.close()


def server_ssl_context(tls, directory) -> ssl.SSLContext:
    cert_path, key_path = tls.write(directory, "apiserver")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


@pytest.fixture
def start_fake_cluster(emulator_loop, tmp_path_factory) -> Iterator:
    """``start_fake_cluster(token=..., namespaces=[...])``: a new emulated API server."""
    started: list[FakeCluster] = []

    def start(*, token: str = "cluster-token-do-not-leak", namespaces=(), **options):
        """``tls=IssuedCert`` serves HTTPS with that certificate."""
        tls = options.pop("tls", None)
        if tls is not None:
            options["ssl_context"] = server_ssl_context(tls, tmp_path_factory.mktemp("tls"))
        fake = emulator_loop.start(token=token, **options)
        for namespace in namespaces:
            fake.add_namespace(namespace)
        started.append(fake)
        return fake

    yield start
    for fake in reversed(started):  # kmock's resolver patches unwind last-in first-out
        emulator_loop.stop(fake)


@pytest.fixture
def add_cluster(start_fake_cluster):
    """``add_cluster("prod", namespaces=["a", "b"])``: an emulated cluster, its Cluster row and
    one environment per namespace. Returns ``(cluster, fake)``."""

    def add(name: str, *, namespaces=("team-a",), **options) -> tuple[Cluster, FakeCluster]:
        fake = start_fake_cluster(namespaces=namespaces, **options)
        cluster = ClusterFactory(name=name, api_url=fake.url, token=fake.token)
        for namespace in namespaces:
            EnvironmentFactory(
                name=f"{name}-{namespace}"[:30], cluster=cluster, namespace=namespace
            )
        return cluster, fake

    return add


class QueuedClusters:
    """The clusters whose reconcile was sent to the broker, in order (a list to compare)."""

    TASK = "clusters.tasks.reconcile_cluster_pull_secrets"

    def __init__(self, broker) -> None:
        self.broker = broker

    def _clusters(self) -> list[int]:
        from clusters.models import ReconcileRun

        runs = dict(ReconcileRun.objects.values_list("pk", "cluster_id"))
        return [runs.get(pk) for pk in self.broker.sent(self.TASK)]

    def __iter__(self):
        return iter(self._clusters())

    def __len__(self) -> int:
        return len(self._clusters())

    def __eq__(self, other) -> bool:
        return self._clusters() == list(other)

    def __repr__(self) -> str:
        return repr(self._clusters())

    def clear(self) -> None:
        self.broker.sent(self.TASK).clear()


@pytest.fixture
def queued_reconciles(broker) -> QueuedClusters:
    """The clusters whose reconcile runs were sent to the broker (not run: tests run them)."""
    return QueuedClusters(broker)
