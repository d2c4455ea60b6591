"""Registry connections via a proxy (tinyproxy) and via an SSH tunnel (sshd), real servers.

The registries listen on loopback and are reachable directly too, so each test that
claims "through the proxy/tunnel" checks the proxy's or sshd's own log for the request.
"""

import pytest
from django.urls import reverse

from config.http import Transport
from config.models import AuditEntry
from config.tunnel import SshTarget
from registries import oci
from registries.connectivity import check_connection
from registries.models import Registry
from tests.factories import registry_form_data
from tests.servers.base import free_port
from tests.servers.ssh import SshKeyPair

pytestmark = pytest.mark.services


def via_proxy(server, proxy, **fields) -> oci.Connection:
    values = {
        "tls": oci.TLS_INSECURE,
        "proxy_url": proxy.url,
        "proxy_username": proxy.username,
        "proxy_password": proxy.password,
        "timeout": 5.0,
    }
    values.update(fields)
    return oci.Connection(
        host=server.host,
        username=server.username,
        password=server.password,
        transport=Transport(**values),
    )


def tunnel_to(ssh_server, **fields) -> SshTarget:
    values = {
        "host": ssh_server.host,
        "port": ssh_server.port,
        "username": ssh_server.username,
        "private_key": ssh_server.user_key.private_openssh,
        "host_keys": ssh_server.host_key_line,
    }
    values.update(fields)
    return SshTarget(**values)


def via_tunnel(
    server, ssh_server, *, host: str = "", tls: str = oci.TLS_INSECURE, ca_pem: str = "", **fields
) -> oci.Connection:
    return oci.Connection(
        host=host or server.host,
        username=server.username,
        password=server.password,
        transport=Transport(
            tls=tls, ca_pem=ca_pem, ssh=tunnel_to(ssh_server, **fields), timeout=5.0
        ),
    )


def ping_error(conn: oci.Connection) -> oci.RegistryError:
    with pytest.raises(oci.RegistryError) as caught:
        oci.ping(conn)
    return caught.value


# --- proxy ------------------------------------------------------------------------------


def test_plain_http_registry_answers_through_the_proxy(private_registry, http_proxy):
    result = oci.ping(via_proxy(private_registry, http_proxy))
    assert result.auth_scheme == "basic"
    assert f"http://{private_registry.host}/v2/" in http_proxy.log()


def test_https_registry_answers_through_a_proxy_connect_with_tls_verified(
    tls_registry, http_proxy, ca
):
    conn = via_proxy(tls_registry, http_proxy, tls=oci.TLS_CA, ca_pem=ca.cert_pem)
    result = oci.ping(conn)
    assert result.base_url == f"https://{tls_registry.host}"
    assert f"CONNECT {tls_registry.host}" in http_proxy.log()


def test_certificate_is_still_checked_end_to_end_through_the_proxy(tls_registry, http_proxy):
    error = ping_error(via_proxy(tls_registry, http_proxy, tls=oci.TLS_SECURE))
    assert error.kind == oci.RegistryError.TLS


def test_proxy_with_the_right_credentials_lets_the_request_through(
    private_registry, tls_registry, auth_proxy, ca
):
    assert oci.ping(via_proxy(private_registry, auth_proxy)).auth_scheme == "basic"
    conn = via_proxy(tls_registry, auth_proxy, tls=oci.TLS_CA, ca_pem=ca.cert_pem)
    assert oci.ping(conn).auth_scheme == "basic"


@pytest.mark.parametrize("tls", [oci.TLS_INSECURE, oci.TLS_CA])
def test_proxy_with_wrong_credentials_says_the_proxy_rejected_them(
    private_registry, tls_registry, auth_proxy, ca, tls
):
    server = private_registry if tls == oci.TLS_INSECURE else tls_registry
    conn = via_proxy(server, auth_proxy, proxy_password="wrong", tls=tls, ca_pem=ca.cert_pem)
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.PROXY_AUTH, str(error)
    assert "rejected the proxy username and password" in str(error)
    assert "wrong" not in str(error)


def test_wrong_proxy_credentials_on_a_plain_http_route_are_the_proxys_refusal(
    private_registry, auth_proxy
):
    # Remembered as plain HTTP: the request goes to the proxy as an absolute URI, whose
    # refusal (tinyproxy: a 401 of its own) must not read as the registry's.
    conn = via_proxy(private_registry, auth_proxy, proxy_password="wrong-proxy-pw")
    oci._remember(conn, plain_http=True)
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.PROXY_AUTH, str(error)
    assert "rejected the proxy username and password" in str(error)
    assert "wrong-proxy-pw" not in str(error)


def test_proxy_without_credentials_asks_for_them(private_registry, auth_proxy):
    error = ping_error(
        via_proxy(private_registry, auth_proxy, proxy_username="", proxy_password="")
    )
    assert error.cause == oci.RegistryError.PROXY_AUTH
    assert "Enter the proxy username and password" in str(error)


def test_proxy_host_that_is_not_a_valid_name_is_reported_not_raised(private_registry):
    conn = oci.Connection(
        host=private_registry.host, transport=Transport(proxy_url="http://proxy..example:3128")
    )
    error = ping_error(conn)
    assert error.kind == oci.RegistryError.UNREACHABLE
    assert "not a valid host name" in str(error)


def test_registry_host_that_is_not_a_valid_name_is_reported_not_raised():
    conn = oci.Connection(host="registry..example:5000", transport=Transport(tls=oci.TLS_INSECURE))
    error = ping_error(conn)
    assert error.kind == oci.RegistryError.UNREACHABLE
    assert "not a valid host name" in str(error)


def test_proxy_that_is_down_is_reported_as_refused(private_registry, http_proxy):
    conn = via_proxy(private_registry, http_proxy, proxy_url=f"http://127.0.0.1:{free_port()}")
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.PROXY_REFUSED
    assert error.kind == oci.RegistryError.UNREACHABLE
    assert "connection was refused" in str(error)


def test_proxy_that_cannot_reach_the_registry_says_so(http_proxy):
    conn = oci.Connection(
        host=f"127.0.0.1:{free_port()}", transport=Transport(proxy_url=http_proxy.url, timeout=5.0)
    )
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.PROXY_UPSTREAM
    assert "could not connect to it" in str(error)


def test_token_service_is_reached_through_the_proxy_too(token_registry, http_proxy):
    result = oci.ping(via_proxy(token_registry, http_proxy))
    assert result.auth_scheme == "bearer"
    assert token_registry.token_server.realm in http_proxy.log()


# --- SSH tunnel -----------------------------------------------------------------------


def test_plain_http_registry_answers_through_the_tunnel(private_registry, ssh_server):
    port = private_registry.port
    result = oci.ping(via_tunnel(private_registry, ssh_server))
    assert result.auth_scheme == "basic"
    assert f"target 127.0.0.1 port {port}" in ssh_server.log()


def test_https_registry_answers_through_the_tunnel_with_tls_verified(tls_registry, ssh_server, ca):
    conn = via_tunnel(tls_registry, ssh_server, tls=oci.TLS_CA, ca_pem=ca.cert_pem)
    assert oci.ping(conn).base_url == f"https://{tls_registry.host}"


def test_token_service_is_reached_through_the_tunnel_too(token_registry, ssh_server):
    result = oci.ping(via_tunnel(token_registry, ssh_server))
    assert result.auth_scheme == "bearer"
    token_port = token_registry.token_server.realm.split(":")[2].split("/")[0]
    assert f"target 127.0.0.1 port {token_port}" in ssh_server.log()


def test_connection_and_tunnel_reprs_hold_no_secret(ssh_server, http_proxy):
    proxied = via_proxy(
        type("S", (), {"host": "r:5000", "username": "u", "password": "registry-pw"})(),
        http_proxy, proxy_username="pu", proxy_password="proxy-pw",
    )  # fmt: skip
    tunneled = oci.Connection(
        host="r:5000", transport=Transport(ssh=tunnel_to(ssh_server, password="ssh-pw"))
    )
    text = repr(proxied) + repr(tunneled) + repr(tunneled.transport.ssh)
    for secret in ("registry-pw", "proxy-pw", "ssh-pw", "PRIVATE KEY"):
        assert secret not in text


def test_private_key_in_pem_format_logs_in_too(private_registry, ssh_server):
    conn = via_tunnel(private_registry, ssh_server, private_key=ssh_server.user_key.private_pem)
    assert oci.ping(conn).auth_scheme == "basic"


def test_wrong_password_is_an_ssh_authentication_failure(private_registry, ssh_server):
    conn = via_tunnel(private_registry, ssh_server, private_key="", password="not-the-password")
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.SSH_AUTH
    assert "rejected user" in str(error)
    assert "not-the-password" not in str(error)


def test_wrong_key_is_an_ssh_authentication_failure(private_registry, ssh_server):
    other_key = SshKeyPair.generate().private_openssh
    error = ping_error(via_tunnel(private_registry, ssh_server, private_key=other_key))
    assert error.cause == oci.RegistryError.SSH_AUTH
    assert error.kind == oci.RegistryError.AUTH


def test_changed_host_key_is_a_mismatch_even_with_trust_on_first_use(private_registry, ssh_server):
    pinned = f"[127.0.0.1]:{ssh_server.port} {SshKeyPair.generate().public_line}"
    conn = via_tunnel(private_registry, ssh_server, host_keys=pinned, trust_on_first_use=True)
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.HOST_KEY
    assert "Host key mismatch" in str(error)
    assert "clear the pinned key" in str(error)


def test_unknown_host_key_without_trust_on_first_use_is_refused(private_registry, ssh_server):
    error = ping_error(via_tunnel(private_registry, ssh_server, host_keys=""))
    assert error.cause == oci.RegistryError.HOST_KEY
    assert "Trust on first use" in str(error)


def test_unknown_host_key_with_trust_on_first_use_is_learned(private_registry, ssh_server):
    learned = []
    conn = via_tunnel(
        private_registry, ssh_server, host_keys="", trust_on_first_use=True,
        on_host_key_learned=learned.append,
    )  # fmt: skip
    assert oci.ping(conn).auth_scheme == "basic"
    assert learned == [ssh_server.host_key_line]


def test_registry_unreachable_from_the_tunnels_end_says_so(private_registry, ssh_server):
    conn = via_tunnel(private_registry, ssh_server, host=f"127.0.0.1:{free_port()}")
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.TUNNEL_FORWARD
    assert error.kind == oci.RegistryError.UNREACHABLE
    assert "could not connect to 127.0.0.1" in str(error)


def test_ssh_server_that_is_down_is_reported_unreachable(private_registry, ssh_server):
    conn = via_tunnel(private_registry, ssh_server, port=free_port())
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.SSH_UNREACHABLE
    assert "Could not reach the SSH server" in str(error)


@pytest.mark.parametrize("host", ["bastion..example.com", "x" * 70 + ".example.com"])
def test_ssh_host_that_is_not_a_valid_name_is_reported_not_raised(private_registry, host):
    # A typo'd host fails IDNA encoding (UnicodeError) before any connection is tried.
    ssh = SshTarget(host=host, username="tunnel", password="pw", trust_on_first_use=True)
    conn = oci.Connection(host=private_registry.host, transport=Transport(ssh=ssh, timeout=5.0))
    error = ping_error(conn)
    assert error.cause == oci.RegistryError.SSH_UNREACHABLE
    assert f"Could not reach the SSH server {host}:22" in str(error)


def test_closing_the_client_closes_the_tunnel(private_registry, ssh_server):
    client = oci.RegistryClient(via_tunnel(private_registry, ssh_server))
    client.ping()
    transport = client.tunnel._client.get_transport()
    assert transport.is_active()
    client.close()
    assert not transport.is_active()


# --- through the Registry model: Test connection, trust on first use, ECR -----------------


def registry_for(server, **fields) -> Registry:
    values = {
        "name": "fixture", "provider": "other", "url": server.host, "auth_type": "password",
        "username": server.username or "", "secret": server.password or "",
        "tls_mode": "insecure",
    }  # fmt: skip
    values.update(fields)
    return Registry(**values)


def ssh_registry(server, ssh_server, **fields) -> Registry:
    values = {
        "connection_method": "ssh", "ssh_host": ssh_server.host, "ssh_port": ssh_server.port,
        "ssh_user": ssh_server.username, "ssh_private_key": ssh_server.user_key.private_openssh,
        "ssh_host_key": ssh_server.host_key_line,
    }  # fmt: skip
    values.update(fields)
    return registry_for(server, **values)


@pytest.mark.django_db
def test_test_connection_goes_through_the_registrys_proxy(private_registry, auth_proxy):
    registry = registry_for(
        private_registry, connection_method="proxy", proxy_url=auth_proxy.url,
        proxy_username=auth_proxy.username, proxy_password=auth_proxy.password,
    )  # fmt: skip
    result = check_connection(registry)
    assert result.ok, result.message
    assert f"Went through the proxy 127.0.0.1:{auth_proxy.port}." in result.steps


@pytest.mark.django_db
def test_test_connection_reports_a_proxy_login_failure(private_registry, auth_proxy):
    registry = registry_for(
        private_registry, connection_method="proxy", proxy_url=auth_proxy.url,
        proxy_username=auth_proxy.username, proxy_password="wrong-proxy-password",
    )  # fmt: skip
    result = check_connection(registry)
    assert not result.ok
    assert "rejected the proxy username and password" in result.message


@pytest.mark.django_db
def test_test_connection_goes_through_the_registrys_ssh_tunnel(private_registry, ssh_server):
    result = check_connection(ssh_registry(private_registry, ssh_server))
    assert result.ok, result.message
    assert f"Opened an SSH tunnel through {ssh_server.host}:{ssh_server.port}." in result.steps


@pytest.mark.django_db
def test_trust_on_first_use_saves_and_audits_the_servers_key(private_registry, ssh_server):
    registry = ssh_registry(private_registry, ssh_server, ssh_host_key="")
    registry.ssh_trust_on_first_use = True
    registry.save()
    result = check_connection(registry)
    assert result.ok, result.message
    assert any("Trusted the SSH server's host key on first use" in s for s in result.steps)
    registry.refresh_from_db()
    assert registry.ssh_host_key == ssh_server.host_key_line
    entry = AuditEntry.objects.get(object_id=str(registry.pk), action="update")
    assert entry.changes == {"ssh_host_key": ["", ssh_server.host_key_line]}


@pytest.mark.django_db
def test_trust_on_first_use_refuses_a_key_other_than_the_one_pinned_meanwhile(
    private_registry, ssh_server
):
    # Two workers (say, syncs of two repositories) meet the server for the first time at
    # once: only one pin is kept, and the other must not carry on with a different key.
    saved = ssh_registry(private_registry, ssh_server, ssh_host_key="")
    saved.ssh_trust_on_first_use = True
    saved.save()
    registry = Registry.objects.get(pk=saved.pk)
    other_key = f"[{ssh_server.host}]:{ssh_server.port} {SshKeyPair.generate().public_line}"
    Registry.objects.filter(pk=saved.pk).update(ssh_host_key=other_key)

    error = ping_error(registry.connection())

    assert error.cause == oci.RegistryError.HOST_KEY
    assert "Host key mismatch" in str(error)
    assert Registry.objects.get(pk=saved.pk).ssh_host_key == other_key


@pytest.mark.django_db
def test_testing_an_unsaved_change_of_ssh_server_pins_nothing_on_the_stored_registry(
    private_registry, ssh_server
):
    # The stored row still names the old server: the new server's key belongs to the edit.
    saved = ssh_registry(private_registry, ssh_server, ssh_host_key="", ssh_host="old.invalid")
    saved.ssh_trust_on_first_use = True
    saved.save()
    editing = Registry.objects.get(pk=saved.pk)
    editing.ssh_host = ssh_server.host

    result = check_connection(editing)

    assert result.ok, result.message
    assert editing.ssh_host_key == ssh_server.host_key_line
    assert Registry.objects.get(pk=saved.pk).ssh_host_key == ""


@pytest.mark.django_db
def test_trust_on_first_use_accepts_the_same_key_pinned_meanwhile(private_registry, ssh_server):
    saved = ssh_registry(private_registry, ssh_server, ssh_host_key="")
    saved.ssh_trust_on_first_use = True
    saved.save()
    registry = Registry.objects.get(pk=saved.pk)
    Registry.objects.filter(pk=saved.pk).update(ssh_host_key=ssh_server.host_key_line)

    assert oci.ping(registry.connection()).auth_scheme == "basic"


@pytest.mark.django_db
def test_ecr_token_call_goes_through_the_registrys_proxy(moto_server, settings, http_proxy):
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    registry = Registry(
        name="ecr", provider="ecr", url="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        auth_type="access-key", username="AKIAWHARFTEST", secret="aws-secret-key",
        connection_method="proxy", proxy_url=http_proxy.url,
    )  # fmt: skip
    token = registry.ecr_token()
    assert token.username == "AWS"
    assert f"{moto_server}/" in http_proxy.log()


@pytest.mark.django_db
def test_ecr_token_call_through_a_proxy_that_is_down_names_the_proxy_only(moto_server, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    port = free_port()
    registry = Registry(
        name="ecr", provider="ecr", url="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        auth_type="access-key", username="AKIAWHARFTEST", secret="aws-secret-key",
        connection_method="proxy", proxy_url=f"http://127.0.0.1:{port}",
        proxy_username="u", proxy_password="proxy-secret-value",
    )  # fmt: skip
    result = check_connection(registry)
    assert not result.ok
    assert f"through the proxy 127.0.0.1:{port}" in result.message
    assert "proxy-secret-value" not in result.message


@pytest.mark.django_db
def test_test_connection_button_shows_a_host_key_mismatch(
    admin_client, private_registry, ssh_server
):
    data = registry_form_data(
        url=private_registry.host, username=private_registry.username,
        secret=private_registry.password, tls_mode="insecure", _action="test",
        connection_method="ssh", ssh_host=ssh_server.host, ssh_port=ssh_server.port,
        ssh_user=ssh_server.username, ssh_private_key=ssh_server.user_key.private_openssh,
        ssh_host_key=SshKeyPair.generate().public_line,
    )  # fmt: skip
    response = admin_client.post(
        reverse("registries:registry_add"), data, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "Host key mismatch" in html
    assert "BEGIN OPENSSH PRIVATE KEY" not in html
    assert not Registry.objects.exists()


@pytest.mark.django_db
def test_saving_with_trust_on_first_use_pins_the_key_seen(
    admin_client, private_registry, ssh_server
):
    data = registry_form_data(
        url=private_registry.host, username=private_registry.username,
        secret=private_registry.password, tls_mode="insecure", save_without_checking=None,
        connection_method="ssh", ssh_host=ssh_server.host, ssh_port=ssh_server.port,
        ssh_user=ssh_server.username, ssh_private_key=ssh_server.user_key.private_openssh,
        ssh_trust_on_first_use="on",
    )  # fmt: skip
    admin_client.post(reverse("registries:registry_add"), data)
    assert Registry.objects.get().ssh_host_key == ssh_server.host_key_line
