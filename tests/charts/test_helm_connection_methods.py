"""A Helm repository reached via a proxy (tinyproxy) or an SSH tunnel (sshd), real servers.

nginx serves the repository on loopback, which is reachable directly too, so each test
that claims "through the proxy/tunnel" checks the proxy's or sshd's own log for it.
"""

from __future__ import annotations

import pytest

from charts.files import read_pending_files
from charts.helmcheck import check_helm_repository
from charts.models import ChartVersion, HelmRepository, SyncRun
from config.models import AuditEntry
from tests.chartkit import helm_index, make_chart_archive
from tests.charts.helpers import helm_source, sync, unique
from tests.servers.ssh import SshKeyPair

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def publish(repo, name: str = "web", version: str = "1.0.0") -> bytes:
    archive = make_chart_archive(name, version, values=f"image: {name}\n")
    repo.put(f"charts/{name}-{version}.tgz", archive)
    repo.write_index(helm_index([{"name": name, "version": version, "archive": archive}]))
    return archive


def proxy_fields(proxy, **fields) -> dict:
    values = {
        "connection_method": HelmRepository.ConnectionMethod.PROXY,
        "proxy_url": proxy.url,
        "proxy_username": proxy.username,
        "proxy_password": proxy.password,
    }
    values.update(fields)
    return values


def tunnel_fields(ssh_server, **fields) -> dict:
    values = {
        "connection_method": HelmRepository.ConnectionMethod.SSH,
        "ssh_host": ssh_server.host,
        "ssh_port": ssh_server.port,
        "ssh_user": ssh_server.username,
        "ssh_private_key": ssh_server.user_key.private_openssh,
        "ssh_host_key": ssh_server.host_key_line,
    }
    values.update(fields)
    return values


# --- via Proxy --------------------------------------------------------------------------


def test_a_helm_repository_is_synced_through_its_proxy(helm_repo, http_proxy):
    publish(helm_repo)
    source = helm_source(helm_repo, **proxy_fields(http_proxy))

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert ChartVersion.objects.get().chart.name == "web"
    assert f"{helm_repo.url}/index.yaml" in http_proxy.log()


def test_a_private_repository_behind_an_authenticating_proxy_gets_both_logins(
    private_helm_repo, auth_proxy
):
    publish(private_helm_repo, "secret-app")
    source = helm_source(private_helm_repo, **proxy_fields(auth_proxy))

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert f"{private_helm_repo.url}/index.yaml" in auth_proxy.log()
    assert '"charts"' in private_helm_repo.access_log_lines()[-1]  # nginx saw the Basic user


def test_wrong_proxy_credentials_fail_the_sync_saying_the_proxy_rejected_them(
    helm_repo, auth_proxy
):
    publish(helm_repo)
    source = helm_source(helm_repo, **proxy_fields(auth_proxy, proxy_password="not-the-pw-x"))

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert f"The proxy 127.0.0.1:{auth_proxy.port} rejected the proxy username and password" in (
        run.error
    )
    assert "not-the-pw-x" not in run.error
    assert helm_repo.access_log_lines() == []  # nothing reached the repository


def test_chart_archives_are_downloaded_through_the_repositorys_proxy(helm_repo, http_proxy):
    publish(helm_repo)
    sync(helm_source(helm_repo, **proxy_fields(http_proxy)))

    read_pending_files()  # what the worker does after the sync
    version = ChartVersion.objects.get()

    assert version.values_yaml == "image: web\n", version.files_error
    assert f"{helm_repo.url}/charts/web-1.0.0.tgz" in http_proxy.log()


def test_test_connection_goes_through_the_repositorys_proxy(helm_repo, auth_proxy):
    publish(helm_repo)
    repository = HelmRepository(
        name=unique("helm"), url=helm_repo.url, tls_mode="insecure", **proxy_fields(auth_proxy)
    )

    result = check_helm_repository(repository)

    assert result.ok, result.message
    assert f"Went through the proxy 127.0.0.1:{auth_proxy.port}." in result.steps
    assert f"{helm_repo.url}/index.yaml" in auth_proxy.log()


# --- via SSH Tunnel ---------------------------------------------------------------------


def test_a_helm_repository_is_synced_through_its_ssh_tunnel(helm_repo, ssh_server):
    publish(helm_repo)
    source = helm_source(helm_repo, **tunnel_fields(ssh_server))

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert ChartVersion.objects.get().chart.name == "web"
    assert f"target 127.0.0.1 port {helm_repo.port}" in ssh_server.log()


def test_a_host_key_mismatch_is_recorded_on_the_sync_run(helm_repo, ssh_server):
    publish(helm_repo)
    other_key = f"[127.0.0.1]:{ssh_server.port} {SshKeyPair.generate().public_line}"
    source = helm_source(helm_repo, **tunnel_fields(ssh_server, ssh_host_key=other_key))

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "Host key mismatch for the SSH server" in run.error
    assert helm_repo.access_log_lines() == []
    assert not ChartVersion.objects.exists()


def test_a_repository_unreachable_from_the_tunnels_end_says_so(helm_repo, ssh_server):
    from tests.servers.base import free_port

    source = helm_source(
        helm_repo, url=f"http://127.0.0.1:{free_port()}", **tunnel_fields(ssh_server)
    )

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "could not connect to 127.0.0.1" in run.error
    assert "Check that the Helm repository is reachable from the SSH server" in run.error


def test_trust_on_first_use_pins_the_servers_key_on_the_repository(helm_repo, ssh_server):
    publish(helm_repo)
    source = helm_source(
        helm_repo, **tunnel_fields(ssh_server, ssh_host_key="", ssh_trust_on_first_use=True)
    )
    repository = source.helm_repository

    result = check_helm_repository(HelmRepository.objects.get(pk=repository.pk))

    assert result.ok, result.message
    assert any("Trusted the SSH server's host key on first use" in s for s in result.steps)
    assert HelmRepository.objects.get(pk=repository.pk).ssh_host_key == ssh_server.host_key_line
    entry = AuditEntry.objects.get(object_id=str(repository.pk), action="update")
    assert entry.changes == {"ssh_host_key": ["", ssh_server.host_key_line]}
