"""Chart sync through a registry's proxy or SSH tunnel, against real tinyproxy and sshd."""

from __future__ import annotations

import pytest

from charts.models import ChartVersion, SyncRun
from tests.charts.helpers import oci_registry, push_versions, source_of, sync, unique
from tests.servers.ssh import SshKeyPair

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def tunnel_fields(ssh_server, **fields) -> dict:
    values = {
        "connection_method": "ssh", "ssh_host": ssh_server.host, "ssh_port": ssh_server.port,
        "ssh_user": ssh_server.username, "ssh_private_key": ssh_server.user_key.private_openssh,
        "ssh_host_key": ssh_server.host_key_line,
    }  # fmt: skip
    values.update(fields)
    return values


def test_chart_sync_reads_the_registry_through_the_ssh_tunnel(tls_chart_registry, ssh_server):
    repo = unique("charts/tunnel")
    push_versions(tls_chart_registry, repo, "api", ["1.0.0", "1.1.0"])
    registry = oci_registry(tls_chart_registry, [repo], **tunnel_fields(ssh_server))

    run = sync(source_of(registry, repo))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert set(
        ChartVersion.objects.filter(chart__source__repository=repo).values_list(
            "version", flat=True
        )
    ) == {"1.0.0", "1.1.0"}
    assert f"target 127.0.0.1 port {tls_chart_registry.port}" in ssh_server.log()


def test_chart_sync_through_the_proxy_reads_the_registry(private_chart_registry, http_proxy):
    repo = unique("charts/proxied")
    push_versions(private_chart_registry, repo, "web", ["2.0.0"])
    registry = oci_registry(
        private_chart_registry, [repo], connection_method="proxy", proxy_url=http_proxy.url
    )

    run = sync(source_of(registry, repo))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert f"/v2/{repo}/tags/list" in http_proxy.log()


def test_chart_sync_run_records_a_host_key_mismatch(private_chart_registry, ssh_server):
    repo = unique("charts/mismatch")
    other_key = f"[127.0.0.1]:{ssh_server.port} {SshKeyPair.generate().public_line}"
    registry = oci_registry(
        private_chart_registry, [repo], **tunnel_fields(ssh_server, ssh_host_key=other_key)
    )

    run = sync(source_of(registry, repo))

    assert run.status == SyncRun.Status.FAILED
    assert "Host key mismatch" in run.error
