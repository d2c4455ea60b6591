"""The deploy tests use the charts tests' nginx Helm repository."""

from tests.charts.conftest import _helm_repo_server, helm_repo

__all__ = ["_helm_repo_server", "helm_repo"]
