"""The form's proxy and SSH tunnel fields: rules, secrets kept and never shown, audit."""

import pytest
from django.urls import reverse

from config.models import AuditEntry
from registries.forms import RegistryForm, save_registry
from registries.models import Registry
from tests.factories import RegistryFactory, registry_form_data
from tests.servers.ssh import SshKeyPair

pytestmark = pytest.mark.django_db

PROXY_PASSWORD = "proxy-pass-9d2e-do-not-leak"
HOST_KEY = SshKeyPair.generate().public_line


def form_for(instance=None, **overrides) -> RegistryForm:
    return RegistryForm(data=registry_form_data(**overrides), instance=instance)


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
        "ssh_private_key": SshKeyPair.generate().private_openssh,
        **fields,
    }


def test_proxy_registry_saves_its_credentials_apart_from_the_url():
    form = form_for(**proxy_fields())
    assert form.is_valid(), form.errors
    registry = save_registry(form)
    assert registry.proxy_url == "http://proxy.example.com:3128"
    assert (registry.proxy_username, registry.proxy_password) == ("wharf", PROXY_PASSWORD)


def test_credentials_pasted_into_the_proxy_url_move_to_their_fields():
    url = f"http://paste%40corp:{PROXY_PASSWORD}@proxy.example.com:3128"
    form = form_for(**proxy_fields(proxy_url=url, proxy_username="", proxy_password=""))
    assert form.is_valid(), form.errors
    registry = save_registry(form)
    assert registry.proxy_url == "http://proxy.example.com:3128"
    assert (registry.proxy_username, registry.proxy_password) == ("paste@corp", PROXY_PASSWORD)


def test_a_form_with_errors_never_echoes_a_password_pasted_into_the_proxy_url():
    url = f"http://user:{PROXY_PASSWORD}@proxy.example.com:3128"
    form = form_for(**proxy_fields(proxy_url=url, name="Not Valid!"))
    assert not form.is_valid()
    assert PROXY_PASSWORD not in str(form)
    assert "http://proxy.example.com:3128" in str(form)


@pytest.mark.parametrize("password", ["12/34", "pass/word", "pa?ss", "pa#ss"])
def test_a_pasted_password_with_url_characters_is_never_kept_in_the_url_or_echoed(password):
    # "/", "?" and "#" end the host part of a URL: a password holding one, pasted
    # unencoded, must still be taken as the password, not as the proxy's host and path.
    url = f"http://user:{password}@proxy.example.com:3128"
    form = form_for(**proxy_fields(proxy_url=url, proxy_username="", proxy_password=""))
    assert form.is_valid(), form.errors
    assert password not in str(form)
    registry = save_registry(form)
    assert registry.proxy_url == "http://proxy.example.com:3128"
    assert (registry.proxy_username, registry.proxy_password) == ("user", password)


@pytest.mark.parametrize(
    "url", ["user:s3cr/et@proxy.example.com:3128", "http://user:s3cr/et@proxy.example.com:99999"]
)
def test_an_unusable_proxy_url_is_refused_without_echoing_its_password(url):
    form = form_for(**proxy_fields(proxy_url=url, proxy_username="", proxy_password=""))
    assert not form.is_valid()
    assert "proxy_url" in form.errors
    assert "s3cr" not in str(form)


def test_a_proxy_url_with_a_path_is_refused():
    form = form_for(**proxy_fields(proxy_url="http://proxy.example.com:3128/some/path"))
    assert not form.is_valid()
    assert "proxy_url" in form.errors


def test_blank_proxy_password_on_edit_keeps_the_stored_one():
    registry = RegistryFactory(
        name="team-registry", connection_method="proxy", proxy_url="http://p:3128",
        proxy_username="wharf", proxy_password=PROXY_PASSWORD,
    )  # fmt: skip
    form = form_for(registry, **proxy_fields(proxy_password=""))
    assert form.is_valid(), form.errors
    assert save_registry(form).proxy_password == PROXY_PASSWORD


def test_switching_to_direct_clears_the_proxy_and_tunnel_settings():
    registry = RegistryFactory(
        name="team-registry", connection_method="proxy", proxy_url="http://p:3128",
        proxy_username="wharf", proxy_password=PROXY_PASSWORD,
    )  # fmt: skip
    form = form_for(registry, connection_method="direct")
    assert form.is_valid(), form.errors
    registry = save_registry(form)
    assert (registry.proxy_url, registry.proxy_username, registry.proxy_password) == ("", "", "")


def test_ssh_registry_saves_a_pinned_host_key_and_trust_on_first_use():
    form = form_for(**ssh_fields(ssh_host_key=f"[b]:22 {HOST_KEY}", ssh_trust_on_first_use="on"))
    assert form.is_valid(), form.errors
    registry = save_registry(form)
    assert registry.ssh_host_key == f"[b]:22 {HOST_KEY}"
    assert registry.ssh_trust_on_first_use is True
    assert registry.ssh_port == 22


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"ssh_host_key": "not a key"}, "ssh_host_key", "not a known_hosts line"),
        ({"ssh_host_key": "ssh-ed25519 AAAA!!"}, "ssh_host_key", "could not be read"),
        (
            {"ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----"},
            "ssh_private_key",
            "could not be read",
        ),
    ],
)  # fmt: skip
def test_unusable_ssh_settings_are_refused(fields, field, message):
    form = form_for(**ssh_fields(**fields))
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


def test_edit_page_renders_no_proxy_or_ssh_secret(admin_client):
    key = SshKeyPair.generate().private_openssh
    registry = RegistryFactory(
        name="team-registry", connection_method="ssh", ssh_host="b", ssh_user="u",
        ssh_password="ssh-pass-do-not-leak", ssh_private_key=key, ssh_host_key=HOST_KEY,
    )  # fmt: skip
    html = admin_client.get(
        reverse("registries:registry_edit", args=[registry.pk])
    ).content.decode()
    assert "ssh-pass-do-not-leak" not in html
    assert key.splitlines()[1] not in html
    assert "Pinned host key" in html and HOST_KEY in html  # a public key, shown to compare
    assert "Trust on first use" in html


def test_refresh_to_proxy_shows_the_proxy_fields(admin_client):
    data = registry_form_data(connection_method="proxy", _refresh="1")
    html = admin_client.post(reverse("registries:registry_add"), data).content.decode()
    assert 'name="proxy_username"' in html and 'name="proxy_password"' in html
    assert 'name="ssh_host_key"' not in html
    assert "later release" not in html


def test_refresh_to_ssh_shows_the_host_key_fields(admin_client):
    data = registry_form_data(connection_method="ssh", _refresh="1")
    html = admin_client.post(reverse("registries:registry_add"), data).content.decode()
    assert 'name="ssh_host_key"' in html and 'name="ssh_trust_on_first_use"' in html
    assert 'name="proxy_username"' not in html


def test_audit_log_shows_the_proxy_password_only_as_changed(admin_client):
    registry = RegistryFactory(name="team-registry", url="registry.example.com:5000")
    admin_client.post(
        reverse("registries:registry_edit", args=[registry.pk]),
        registry_form_data(**proxy_fields()),
    )
    entry = AuditEntry.objects.get(action="update")
    assert entry.changes["proxy_password"] == ["changed"]
    assert entry.changes["proxy_username"] == ["", "wharf"]
    html = admin_client.get(reverse("config:auditentry_list")).content.decode()
    assert PROXY_PASSWORD not in html


def test_plain_users_cannot_change_the_connection_method(user_client):
    registry = RegistryFactory(name="team-registry")
    response = user_client.post(
        reverse("registries:registry_edit", args=[registry.pk]),
        registry_form_data(**proxy_fields()),
    )
    assert response.status_code == 403
    registry.refresh_from_db()
    assert registry.connection_method == Registry.ConnectionMethod.DIRECT


def test_admin_change_page_holds_no_proxy_password(admin_client):
    registry = RegistryFactory(
        name="team-registry", connection_method="proxy", proxy_url="http://p:3128",
        proxy_username="wharf", proxy_password=PROXY_PASSWORD,
    )  # fmt: skip
    html = admin_client.get(f"/admin/registries/registry/{registry.pk}/change/").content.decode()
    assert "wharf" in html and PROXY_PASSWORD not in html


def test_ecr_over_an_ssh_tunnel_says_the_aws_call_goes_direct(admin_client):
    data = registry_form_data(
        provider="ecr", url="123456789012.dkr.ecr.us-east-1.amazonaws.com",
        auth_type="access-key", connection_method="ssh", _refresh="1",
    )  # fmt: skip
    html = admin_client.post(reverse("registries:registry_add"), data).content.decode()
    assert "The AWS call for the ECR token does not use the tunnel" in html
