"""The Helm repository form's connection methods: rules, secrets kept and never shown, audit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from charts.forms import HelmRepositoryForm
from charts.models import HelmRepository
from config.models import AuditEntry
from tests.servers.ssh import SshKeyPair

pytestmark = pytest.mark.django_db

PROXY_PASSWORD = "helm-proxy-pass-do-not-leak"
SSH_PASSWORD = "helm-ssh-pass-do-not-leak"
KEY = SshKeyPair.generate()


def repository_data(**overrides) -> dict:
    data = {
        "name": "stable",
        "url": "https://charts.example.com/stable",
        "access": "public",
        "connection_method": "direct",
        "tls_mode": "secure",
        "active": "on",
        "save_without_checking": "on",  # nothing serves charts.example.com
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def proxy_fields(**fields) -> dict:
    return {
        "connection_method": "proxy",
        "proxy_url": "http://proxy.example.com:3128",
        "proxy_username": "wharf",
        "proxy_password": PROXY_PASSWORD,
        **fields,
    }


def ssh_fields(**fields) -> dict:
    return {
        "connection_method": "ssh",
        "ssh_host": "bastion.example.com",
        "ssh_user": "tunnel",
        "ssh_password": SSH_PASSWORD,
        "ssh_private_key": KEY.private_openssh,
        "ssh_host_key": f"[bastion.example.com]:22 {KEY.public_line}",
        **fields,
    }


def add(admin_client, **overrides):
    return admin_client.post(reverse("charts:helmrepository_add"), repository_data(**overrides))


def test_a_repository_via_proxy_is_saved_with_its_credentials_apart(admin_client):
    response = add(admin_client, **proxy_fields())
    assert response.status_code == 302
    repository = HelmRepository.objects.get()
    assert repository.connection_method == HelmRepository.ConnectionMethod.PROXY
    assert repository.proxy_url == "http://proxy.example.com:3128"
    assert (repository.proxy_username, repository.proxy_password) == ("wharf", PROXY_PASSWORD)


def test_credentials_pasted_into_the_proxy_url_move_to_their_fields(admin_client):
    url = f"http://paste%40corp:{PROXY_PASSWORD}@proxy.example.com:3128"
    add(admin_client, **proxy_fields(proxy_url=url, proxy_username="", proxy_password=""))
    repository = HelmRepository.objects.get()
    assert repository.proxy_url == "http://proxy.example.com:3128"
    assert (repository.proxy_username, repository.proxy_password) == ("paste@corp", PROXY_PASSWORD)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (proxy_fields(proxy_url=""), "Enter the proxy URL"),
        (proxy_fields(proxy_url="ftp://proxy.example.com:21"), "http://host:port"),
        (ssh_fields(ssh_host=""), "Enter the SSH host"),
        (
            ssh_fields(ssh_password="", ssh_private_key=""),
            "Enter the SSH password or a private key",
        ),
        (ssh_fields(ssh_host_key="not a key"), "not a known_hosts line"),
    ],
)
def test_bad_connection_settings_are_explained_and_save_nothing(admin_client, fields, message):
    response = add(admin_client, **fields)
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert not HelmRepository.objects.exists()


def test_a_form_with_errors_never_echoes_a_secret(admin_client):
    url = f"http://user:{PROXY_PASSWORD}@proxy.example.com:3128"
    response = add(admin_client, name="Bad Name", **proxy_fields(proxy_url=url))
    html = response.content.decode()
    assert "lowercase letters" in html
    assert PROXY_PASSWORD not in html
    assert "http://proxy.example.com:3128" in html


def test_the_edit_page_renders_no_proxy_or_ssh_secret(admin_client):
    repository = HelmRepository.objects.create(
        name="stable", url="https://charts.example.com/stable", **ssh_fields()
    )
    html = admin_client.get(reverse("charts:helmrepository_edit", args=[repository.pk])).content
    html = html.decode()
    assert SSH_PASSWORD not in html
    assert KEY.private_openssh.splitlines()[1] not in html
    assert "Pinned host key" in html and KEY.public_line in html  # public, shown to compare
    assert "Leave blank to keep the stored value." in html


def test_blank_secrets_on_an_edit_keep_the_stored_ones(admin_client):
    repository = HelmRepository.objects.create(
        name="stable", url="https://charts.example.com/stable", **ssh_fields()
    )
    admin_client.post(
        reverse("charts:helmrepository_edit", args=[repository.pk]),
        repository_data(name=None, **ssh_fields(ssh_password="", ssh_private_key="")),
    )
    repository.refresh_from_db()
    assert (repository.ssh_password, repository.ssh_private_key) == (
        SSH_PASSWORD,
        KEY.private_openssh,
    )


def test_switching_to_direct_clears_the_proxy_settings(admin_client):
    repository = HelmRepository.objects.create(
        name="stable", url="https://charts.example.com/stable", **proxy_fields()
    )
    admin_client.post(
        reverse("charts:helmrepository_edit", args=[repository.pk]), repository_data(name=None)
    )
    repository.refresh_from_db()
    assert repository.connection_method == "direct"
    assert (repository.proxy_url, repository.proxy_username, repository.proxy_password) == (
        "",
        "",
        "",
    )


def test_the_audit_log_shows_the_proxy_password_only_as_changed(admin_client):
    repository = HelmRepository.objects.create(
        name="stable", url="https://charts.example.com/stable"
    )
    admin_client.post(
        reverse("charts:helmrepository_edit", args=[repository.pk]),
        repository_data(name=None, **proxy_fields()),
    )
    entry = AuditEntry.objects.get(action="update")
    assert entry.changes["proxy_password"] == ["changed"]
    assert entry.changes["connection_method"] == ["direct", "proxy"]
    assert (
        PROXY_PASSWORD not in admin_client.get(reverse("config:auditentry_list")).content.decode()
    )


def test_a_change_of_connection_method_counts_as_a_connection_change():
    repository = HelmRepository.objects.create(
        name="stable", url="https://charts.example.com/stable"
    )
    form = HelmRepositoryForm(
        data=repository_data(name="stable", **proxy_fields()), instance=repository
    )
    assert form.is_valid(), form.errors
    assert form.connection_changed()  # the index is fetched again, from scratch


@pytest.mark.parametrize(
    ("method", "shown", "hidden"),
    [
        ("proxy", ['name="proxy_url"', 'name="proxy_password"'], ['name="ssh_host_key"']),
        ("ssh", ['name="ssh_host_key"', 'name="ssh_trust_on_first_use"'], ['name="proxy_url"']),
        ("direct", [], ['name="proxy_url"', 'name="ssh_host"']),
    ],
)
def test_choosing_a_method_shows_its_fields(admin_client, method, shown, hidden):
    data = repository_data(connection_method=method, _refresh="1")
    html = admin_client.post(reverse("charts:helmrepository_add"), data).content.decode()
    assert 'name="connection_method"' in html
    for name in shown:
        assert name in html
    for name in hidden:
        assert name not in html


def test_the_admin_change_page_holds_no_proxy_password(admin_client):
    repository = HelmRepository.objects.create(
        name="stable", url="https://charts.example.com/stable", **proxy_fields()
    )
    html = admin_client.get(f"/admin/charts/helmrepository/{repository.pk}/change/")
    assert "wharf" in html.content.decode() and PROXY_PASSWORD not in html.content.decode()
