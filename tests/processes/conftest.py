"""Tests with several real processes (workers on Redis, web servers) sharing PostgreSQL.

They use the emulated clusters of the clusters suite (tests/clusters/conftest.py).
"""

from tests.clusters.conftest import add_cluster, emulator_loop, start_fake_cluster

__all__ = ["add_cluster", "emulator_loop", "start_fake_cluster"]
