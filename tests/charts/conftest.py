"""Fixtures for the chart tests: OCI registries to push charts into, and Helm repositories.

The chart registries are separate from ``public_registry`` and friends in
``tests/servers/registry.py``: tests elsewhere expect those to stay empty (``/v2/_catalog``).
One nginx per variant for the whole session; each test gets it with an empty root and
an empty access log, so tests do not see each other's files or requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chartkit import NginxHelmRepo, nginx_executable
from tests.servers.base import service_unavailable


@pytest.fixture(scope="session")
def chart_registry(registry_factory):
    """A registry for chart pushes: plain HTTP, no authentication (shared by the session)."""
    return registry_factory()


@pytest.fixture(scope="session")
def private_chart_registry(registry_factory):
    """A registry for chart pushes: plain HTTP with htpasswd (Basic) authentication."""
    return registry_factory(auth=("charts", "chart-Passw0rd"))


@pytest.fixture(scope="session")
def tls_chart_registry(registry_factory):
    """A registry for chart pushes: HTTPS (``.ca_path``) with htpasswd authentication."""
    return registry_factory(auth=("charts-tls", "tls-chart-Passw0rd"), tls=True)


def _start_nginx(tmp_path_factory, auth: tuple[str, str] | None) -> NginxHelmRepo:
    executable = nginx_executable()
    if executable is None:
        service_unavailable("'nginx' is not installed (apt-get install nginx-light)")
    workdir = tmp_path_factory.mktemp("nginx-helm-repo")
    return NginxHelmRepo.start_on_free_port(workdir, auth=auth, executable=executable)


@pytest.fixture(scope="session")
def _helm_repo_server(tmp_path_factory) -> Iterator[NginxHelmRepo]:
    repo = _start_nginx(tmp_path_factory, auth=None)
    yield repo
    repo.stop()


@pytest.fixture(scope="session")
def _private_helm_repo_server(tmp_path_factory) -> Iterator[NginxHelmRepo]:
    repo = _start_nginx(tmp_path_factory, auth=("charts", "helm-Passw0rd"))
    yield repo
    repo.stop()


@pytest.fixture
def helm_repo(_helm_repo_server) -> NginxHelmRepo:
    """An empty Helm repository over HTTP, no auth: ``.url``, ``.write_index()``, ``.put()``."""
    _helm_repo_server.reset()
    return _helm_repo_server


@pytest.fixture
def private_helm_repo(_private_helm_repo_server) -> NginxHelmRepo:
    """An empty Helm repository behind Basic auth (``.username``, ``.password``)."""
    _private_helm_repo_server.reset()
    return _private_helm_repo_server


@pytest.fixture
def queued_syncs(broker) -> list[int]:
    """The sync runs sent to the broker so far (by primary key), in order.

    Tests run each sync themselves, when they want it, with ``tests.charts.helpers.sync``
    or ``charts.sync.run_sync(run_id)`` (the function the worker calls), or
    ``broker.run_all()``.
    """
    return broker.sent("charts.tasks.sync_chart_source")
