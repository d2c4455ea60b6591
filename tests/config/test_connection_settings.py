"""ConnectionSettings: the connection method's and TLS rules on the models themselves.

The same rules hold for registries and Helm repositories, from a form, the admin or code
(``full_clean()``); the forms only lay the fields out and keep stored secrets.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from charts.models import HelmRepository
from config.connections import split_proxy_credentials
from registries.models import Registry
from tests.servers.ssh import SshKeyPair

pytestmark = pytest.mark.django_db

KEY = SshKeyPair.generate()


def helm(**fields) -> HelmRepository:
    values = {"name": "stable", "url": "https://charts.example.com/stable"}
    values.update(fields)
    return HelmRepository(**values)


def registry(**fields) -> Registry:
    values = {
        "name": "team", "provider": "other", "url": "registry.example.com",
        "auth_type": "password", "username": "robot", "secret": "pw",
    }  # fmt: skip
    values.update(fields)
    return Registry(**values)


def errors_of(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return caught.value.message_dict


@pytest.mark.parametrize("make", [helm, registry], ids=["helm", "registry"])
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"connection_method": "proxy"}, "proxy_url", "Enter the proxy URL"),
        (
            {"connection_method": "proxy", "proxy_url": "proxy.example.com:3128"},
            "proxy_url",
            "http://host:port or https://host:port",
        ),
        (
            {"connection_method": "proxy", "proxy_url": "http://p.example.com:3128/path"},
            "proxy_url",
            "http://host:port or https://host:port",
        ),
        (
            {"connection_method": "proxy", "proxy_url": "http://p.example.com:99999"},
            "proxy_url",
            "between 1 and 65535",
        ),
        ({"connection_method": "ssh", "ssh_user": "u", "ssh_password": "pw"}, "ssh_host", "SSH host"),
        ({"connection_method": "ssh", "ssh_host": "b", "ssh_password": "pw"}, "ssh_user", "SSH user"),
        ({"connection_method": "ssh", "ssh_host": "b", "ssh_user": "u"}, "ssh_password", "password or a private key"),
        (
            {"connection_method": "ssh", "ssh_host": "b", "ssh_user": "u", "ssh_private_key": "nope"},
            "ssh_private_key",
            "not a private key",
        ),
        (
            {"connection_method": "ssh", "ssh_host": "b", "ssh_user": "u", "ssh_password": "pw",
             "ssh_host_key": "not a key"},
            "ssh_host_key",
            "not a known_hosts line",
        ),
        (
            {"connection_method": "ssh", "ssh_host": "b", "ssh_port": 70000, "ssh_user": "u",
             "ssh_password": "pw"},
            "ssh_port",
            "between 1 and 65535",
        ),
        ({"tls_mode": "ca", "ca_certificate": "nope"}, "ca_certificate", "not a PEM certificate"),
        ({"tls_mode": "ca"}, "ca_certificate", "not a PEM certificate"),
    ],
)  # fmt: skip
def test_the_model_refuses_unusable_connection_settings(make, fields, field, message):
    assert message in " ".join(errors_of(make(**fields))[field])


def test_credentials_pasted_into_the_proxy_url_move_to_their_fields_on_the_model():
    repository = helm(
        connection_method="proxy", proxy_url="http://corp%40user:pa/ss@proxy.example.com:3128"
    )
    repository.full_clean()
    assert repository.proxy_url == "http://proxy.example.com:3128"
    assert (repository.proxy_username, repository.proxy_password) == ("corp@user", "pa/ss")


def test_a_refused_proxy_url_keeps_no_pasted_password():
    repository = helm(connection_method="proxy", proxy_url="user:s3cr/et@proxy.example.com")
    errors_of(repository)
    assert "s3cr" not in repository.proxy_url


def test_a_proxy_password_without_a_username_is_dropped():
    repository = helm(
        connection_method="proxy", proxy_url="http://p.example.com:3128", proxy_password="pw"
    )
    repository.full_clean()
    assert repository.proxy_password == ""


def test_another_method_clears_what_the_proxy_and_tunnel_used():
    repository = helm(
        connection_method="direct", proxy_url="http://p:3128", proxy_username="u",
        proxy_password="pw", ssh_host="b", ssh_port=2222, ssh_user="u", ssh_password="pw",
        ssh_private_key=KEY.private_openssh, ssh_host_key=KEY.public_line,
        ssh_trust_on_first_use=True, tls_mode="secure", ca_certificate="left over",
    )  # fmt: skip
    repository.full_clean()
    assert repository.proxy_url == repository.proxy_password == repository.ssh_host == ""
    assert repository.ssh_private_key == repository.ssh_host_key == ""
    assert repository.ssh_port is None and not repository.ssh_trust_on_first_use
    assert repository.ca_certificate == ""


def test_a_good_ssh_tunnel_gets_the_default_port_and_tidy_host_key_lines():
    repository = helm(
        connection_method="ssh", ssh_host=" bastion.example.com ", ssh_user="tunnel",
        ssh_private_key=KEY.private_openssh, ssh_host_key=f"  [b]:22 {KEY.public_line}  \n",
    )  # fmt: skip
    repository.full_clean()
    assert (repository.ssh_host, repository.ssh_port) == ("bastion.example.com", 22)
    assert repository.ssh_host_key == f"[b]:22 {KEY.public_line}"


def test_a_ca_certificate_is_kept_when_valid(ca):
    repository = helm(tls_mode="ca", ca_certificate=f"\n{ca.cert_pem}\n\n")
    repository.full_clean()
    assert repository.ca_certificate == ca.cert_pem.strip() + "\n"


def test_the_transport_follows_the_chosen_method(ca):
    repository = helm(
        connection_method="proxy", proxy_url="http://p:3128", proxy_username="u",
        proxy_password="pw", tls_mode="ca", ca_certificate=ca.cert_pem,
    )  # fmt: skip
    transport = repository.endpoint().transport
    assert (transport.proxy_url, transport.proxy_username, transport.proxy_password) == (
        "http://p:3128", "u", "pw",
    )  # fmt: skip
    assert transport.ssh is None and transport.tls == "ca" and transport.ca_pem == ca.cert_pem
    repository.connection_method = "ssh"
    repository.ssh_host = "b"
    transport = repository.endpoint().transport
    assert transport.proxy_url == "" and transport.ssh.host == "b"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy:3128", ("http://proxy:3128", "", "")),
        ("http://u:p@proxy:3128", ("http://proxy:3128", "u", "p")),
        ("u:p/q@proxy:3128", ("proxy:3128", "u", "p/q")),
        ("https://u%3A1:p%23@proxy:3128", ("https://proxy:3128", "u:1", "p#")),
    ],
)
def test_pasted_proxy_credentials_are_split_off_at_the_last_at_sign(url, expected):
    assert split_proxy_credentials(url) == expected


def test_the_admin_shows_a_rule_about_a_field_it_leaves_out_instead_of_failing(admin_client):
    # The admin form has no secret fields; "password or key" is about one of them.
    repository = HelmRepository.objects.create(name="stable", url="https://charts.example.com")
    response = admin_client.post(
        f"/admin/charts/helmrepository/{repository.pk}/change/",
        {
            "name": "stable", "url": "https://charts.example.com", "access": "public",
            "connection_method": "ssh", "ssh_host": "b", "ssh_user": "u", "tls_mode": "secure",
            "active": "on",
        },
    )  # fmt: skip
    assert response.status_code == 200
    assert "Enter the SSH password or a private key." in response.content.decode()
    repository.refresh_from_db()
    assert repository.connection_method == "direct"
