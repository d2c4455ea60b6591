"""Test connection and the save-time credential check, against real servers.

The distribution registry (plain, htpasswd, TLS, token auth) and moto for ECR run
on loopback; the cloud providers' own hosts cannot be reached from here, so for
them the test shows that Wharf logs in to the right API host with the right user.
"""

import pytest
from django.urls import reverse

from registries.connectivity import check_connection
from registries.models import Registry
from registries.providers import GCP_JSON_KEY_USER
from tests.factories import GCP_KEY, RegistryFactory, registry_form_data

pytestmark = [pytest.mark.django_db, pytest.mark.services]

ECR_URL = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def other(server, **fields) -> Registry:
    """An unsaved "Other" registry pointing at a fixture registry."""
    values = {
        "name": "fixture",
        "provider": "other",
        "url": server.host,
        "auth_type": "password",
        "username": server.username or "",
        "secret": server.password or "",
        "tls_mode": "insecure",
    }
    values.update(fields)
    return Registry(**values)


def test_public_registry_connects_without_credentials(public_registry):
    result = check_connection(other(public_registry, registry_type="public"))
    assert result.ok, result.message
    assert "without asking for credentials" in result.message


def test_private_registry_accepts_the_right_password(private_registry):
    result = check_connection(other(private_registry))
    assert result.ok, result.message
    assert "basic auth" in result.message


def test_private_registry_refuses_a_wrong_password(private_registry):
    result = check_connection(other(private_registry, secret="wrong"))
    assert not result.ok
    assert "rejected the credentials" in result.message


def test_token_registry_accepts_the_right_password_through_a_bearer_token(token_registry):
    result = check_connection(other(token_registry))
    assert result.ok, result.message
    assert "bearer" in result.message


@pytest.mark.parametrize(
    ("tls_mode", "with_ca", "ok"),
    [("ca", True, True), ("secure", False, False), ("insecure", False, True)],
)
def test_tls_registry_per_tls_option(tls_registry, ca, tls_mode, with_ca, ok):
    registry = other(tls_registry, tls_mode=tls_mode, ca_certificate=ca.cert_pem if with_ca else "")
    result = check_connection(registry)
    assert result.ok is ok, result.message
    if not ok:
        assert "Secure with CA certificate" in result.message


def test_ecr_user_auth_gets_a_real_token_from_aws(moto_server, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    registry = Registry(
        name="ecr", provider="ecr", url=ECR_URL, auth_type="access-key",
        username="AKIAWHARFTEST", secret="aws-secret-key",
    )  # fmt: skip
    result = check_connection(registry)
    assert "AWS accepted the credentials" in " ".join(result.steps)
    # The token's registry host is the real ECR endpoint, which this machine cannot reach.
    assert not result.ok and ECR_URL in result.message


def test_ecr_iam_role_uses_ambient_credentials(moto_server, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    registry = Registry(name="ecr", provider="ecr", url=ECR_URL, auth_type="iam-role")
    result = check_connection(registry)
    assert "AWS accepted the credentials" in " ".join(result.steps)


def test_ecr_rejected_access_key_is_reported(moto_checks_credentials, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_checks_credentials
    registry = Registry(
        name="ecr", provider="ecr", url=ECR_URL, auth_type="access-key",
        username="AKIAUNKNOWN", secret="aws-secret-key",
    )  # fmt: skip
    result = check_connection(registry)
    assert not result.ok and not result.steps
    assert "AWS did not issue an ECR token" in result.message
    assert "aws-secret-key" not in result.message


@pytest.mark.parametrize(
    ("provider", "url", "api_host", "user", "secret"),
    [
        ("docker-hub", "docker.io/team", "registry-1.docker.io", "robot", "token"),
        ("acr", "wharfacr.azurecr.io", "wharfacr.azurecr.io", "wharfacr", "password"),
        (
            "gcp-ar",
            "europe-west1-docker.pkg.dev/p/r",
            "europe-west1-docker.pkg.dev",
            GCP_JSON_KEY_USER,
            GCP_KEY,
        ),
        ("gcr", "eu.gcr.io/p", "eu.gcr.io", GCP_JSON_KEY_USER, GCP_KEY),
        ("quay", "quay.io", "quay.io", "robot", "token"),
    ],
)
def test_cloud_providers_log_in_to_their_api_host(provider, url, api_host, user, secret):
    auth = "json-key" if user == GCP_JSON_KEY_USER else "password"
    registry = Registry(
        name="cloud", provider=provider, url=url, auth_type=auth,
        username="" if auth == "json-key" else user, secret=secret,
    )  # fmt: skip
    connection = registry.connection()
    assert (connection.host, connection.username, connection.password) == (api_host, user, secret)
    result = check_connection(registry)  # no internet here: the ping must name that host
    assert not result.ok and api_host in result.message


def test_test_connection_button_answers_with_an_inline_partial(admin_client, private_registry):
    data = registry_form_data(
        url=private_registry.host, username=private_registry.username,
        secret=private_registry.password, tls_mode="insecure", _action="test",
    )  # fmt: skip
    response = admin_client.post(
        reverse("registries:registry_add"), data, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "Connection OK" in html and "<html" not in html
    assert not Registry.objects.exists()


def test_test_connection_on_edit_uses_the_stored_password(admin_client, private_registry):
    registry = RegistryFactory(
        name="team-registry", url=private_registry.host, username=private_registry.username,
        secret=private_registry.password, tls_mode="insecure",
    )  # fmt: skip
    data = registry_form_data(
        url=private_registry.host, username=private_registry.username, secret="",
        tls_mode="insecure", _action="test",
    )  # fmt: skip
    response = admin_client.post(
        reverse("registries:registry_edit", args=[registry.pk]),
        data,
        headers={"HX-Request": "true"},
    )
    assert "Connection OK" in response.content.decode()


def test_test_connection_with_form_errors_lists_them(admin_client):
    data = registry_form_data(url="https://x", _action="test")
    response = admin_client.post(
        reverse("registries:registry_add"), data, headers={"HX-Request": "true"}
    )
    assert "Fix the form first" in response.content.decode()


def test_saving_with_rejected_credentials_shows_the_answer_and_saves_nothing(
    admin_client, private_registry
):
    data = registry_form_data(
        url=private_registry.host, username=private_registry.username, secret="wrong",
        tls_mode="insecure", save_without_checking=None,
    )  # fmt: skip
    response = admin_client.post(reverse("registries:registry_add"), data)
    html = response.content.decode()
    assert "Nothing was saved" in html and "rejected the credentials" in html
    assert not Registry.objects.exists()


def test_save_without_checking_saves_an_unreachable_registry(admin_client, private_registry):
    data = registry_form_data(url="127.0.0.1:9", tls_mode="insecure", save_without_checking="on")
    response = admin_client.post(reverse("registries:registry_add"), data)
    assert response.status_code == 302
    assert Registry.objects.filter(url="127.0.0.1:9").exists()


def test_saving_with_the_right_credentials_passes_the_check(admin_client, private_registry):
    data = registry_form_data(
        url=private_registry.host, username=private_registry.username,
        secret=private_registry.password, tls_mode="insecure", save_without_checking=None,
    )  # fmt: skip
    assert admin_client.post(reverse("registries:registry_add"), data).status_code == 302
    assert Registry.objects.get().secret == private_registry.password


def test_editing_only_flags_does_not_recheck_the_connection(admin_client):
    registry = RegistryFactory(name="team-registry", url="127.0.0.1:9", tls_mode="insecure")
    data = registry_form_data(
        url="127.0.0.1:9", username=registry.username, secret="", tls_mode="insecure",
        push_helm="on", save_without_checking=None,
    )  # fmt: skip
    response = admin_client.post(reverse("registries:registry_edit", args=[registry.pk]), data)
    assert response.status_code == 302
    registry.refresh_from_db()
    assert registry.push_helm
