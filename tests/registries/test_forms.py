"""The registry form's rules, table-driven per provider; bad input changes nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from registries.forms import RegistryForm, save_registry
from registries.models import Registry
from tests.factories import GCP_KEY, RegistryFactory, registry_form_data

pytestmark = pytest.mark.django_db

CA_PEM_MARKER = "-----BEGIN CERTIFICATE-----"


def form_for(instance=None, files=None, **overrides):
    return RegistryForm(data=registry_form_data(**overrides), files=files, instance=instance)


def saved(**overrides) -> Registry:
    form = form_for(**overrides)
    assert form.is_valid(), form.errors
    return save_registry(form)


VALID = [
    pytest.param({}, id="other-private"),
    pytest.param({"registry_type": "public", "username": None, "secret": None}, id="other-public"),
    pytest.param(
        {"provider": "ecr", "url": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
         "auth_type": "access-key", "username": "AKIAEXAMPLE", "secret": "aws-secret"},
        id="ecr-user-auth",
    ),
    pytest.param(
        {"provider": "ecr", "url": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
         "auth_type": "iam-role", "username": None, "secret": None},
        id="ecr-iam-role",
    ),
    pytest.param({"provider": "docker-hub", "url": "docker.io"}, id="docker-hub"),
    pytest.param({"provider": "acr", "url": "wharfacr.azurecr.io"}, id="acr"),
    pytest.param(
        {"provider": "gcp-ar", "url": "europe-west1-docker.pkg.dev/p/r", "auth_type": "json-key",
         "username": None, "secret": GCP_KEY},
        id="gcp-ar",
    ),
    pytest.param(
        {"provider": "gcr", "url": "gcr.io/p", "auth_type": "json-key", "secret": f"'{GCP_KEY}'"},
        id="gcr-quoted-key",
    ),
    pytest.param({"provider": "quay", "url": "quay.io"}, id="quay"),
    pytest.param(
        {"chart_source": "on", "repositories": "charts/stable\n team/apps ,charts/stable"},
        id="chart-source",
    ),
]  # fmt: skip


@pytest.mark.parametrize("overrides", VALID)
def test_valid_registry_forms_save(overrides):
    form = form_for(**overrides)
    assert form.is_valid(), form.errors
    registry = save_registry(form)
    assert Registry.objects.get(pk=registry.pk).name == "team-registry"


INVALID = [
    ("url", {"url": "https://registry.example.com"}, "Drop the scheme"),
    ("url", {"url": "oci://registry.example.com"}, "Drop the scheme"),
    ("url", {"provider": "ecr", "auth_type": "iam-role", "url": "ecr.example.com"}, "12-digit"),
    ("url", {"provider": "acr", "url": "example.com"}, "azurecr.io"),
    ("secret", {"provider": "gcp-ar", "url": "us-docker.pkg.dev", "auth_type": "json-key", "secret": "{nope"}, "not valid JSON"),
    ("secret", {"provider": "gcr", "url": "gcr.io", "auth_type": "json-key", "secret": '{"a": 1}'}, "client_email"),
    ("ca_certificate", {"tls_mode": "ca", "ca_certificate": "hello"}, "not a PEM certificate"),
    ("repositories", {"chart_source": "on", "repositories": ""}, "at least one repository"),
    ("repositories", {"chart_source": "on", "repositories": "Bad Repo"}, "Not a repository path"),
    ("push_images", {"push_images": None}, "Tick at least one"),
    ("url", {"url": ""}, "Enter the registry URL"),
    ("name", {"name": "Bad Name"}, "3–30 characters"),
    ("name", {"name": "ab"}, "3–30 characters"),
    ("name", {"name": "1abc"}, "3–30 characters"),
    ("name", {"name": "abc-"}, "3–30 characters"),
    ("name", {"name": "a/bc"}, "3–30 characters"),
    ("name", {"name": "a" * 31}, "at most 30 characters"),
    ("secret", {"secret": ""}, "Enter the password/token"),
    ("username", {"username": ""}, "Enter the username"),
    ("secret", {"provider": "ecr", "url": "123456789012.dkr.ecr.us-east-1.amazonaws.com", "auth_type": "access-key", "secret": ""}, "secret access key"),
    ("registry_type", {"provider": "gcr", "url": "gcr.io", "registry_type": "public"}, "cannot be a public registry"),
    ("push_helm", {"provider": "gcr", "url": "gcr.io", "auth_type": "json-key", "secret": GCP_KEY, "push_helm": "on"}, "not an OCI registry"),
    ("chart_source", {"provider": "gcr", "url": "gcr.io", "auth_type": "json-key", "secret": GCP_KEY, "chart_source": "on", "repositories": "a"}, "not an OCI registry"),
    ("proxy_url", {"connection_method": "proxy", "proxy_url": ""}, "Enter the proxy URL"),
    ("proxy_url", {"connection_method": "proxy", "proxy_url": "ftp://proxy"}, "http://host:port"),
    ("ssh_host", {"connection_method": "ssh", "ssh_user": "u", "ssh_password": "p"}, "SSH host"),
    ("ssh_password", {"connection_method": "ssh", "ssh_host": "bastion", "ssh_user": "u"}, "password or a private key"),
    ("ssh_private_key", {"connection_method": "ssh", "ssh_host": "b", "ssh_user": "u", "ssh_private_key": "nope"}, "not a private key"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "overrides", "message"), INVALID)
def test_invalid_registry_form_shows_message_on_the_field_and_saves_nothing(
    field, overrides, message
):
    form = form_for(**overrides)
    assert not form.is_valid()
    assert message.lower() in " ".join(form.errors.get(field, [])).lower(), form.errors
    assert not Registry.objects.exists()


def test_docker_hub_without_a_url_gets_docker_io():
    assert saved(provider="docker-hub", url="").url == "docker.io"


def test_duplicate_name_is_rejected():
    RegistryFactory(name="team-registry")
    form = form_for()
    assert not form.is_valid()
    assert "already exists" in str(form.errors["name"])


def test_json_key_can_be_uploaded_as_a_file():
    upload = SimpleUploadedFile("key.json", GCP_KEY.encode(), content_type="application/json")
    form = form_for(
        files={"secret_file": upload}, provider="gcp-ar", url="us-docker.pkg.dev",
        auth_type="json-key", secret="",
    )  # fmt: skip
    assert form.is_valid(), form.errors
    assert "client_email" in save_registry(form).secret


def test_valid_ca_certificate_is_kept(ca):
    form = form_for(tls_mode="ca", ca_certificate=ca.cert_pem)
    assert form.is_valid(), form.errors
    assert CA_PEM_MARKER in save_registry(form).ca_certificate


def test_public_registry_keeps_no_credentials():
    form = form_for(registry_type="public", username="robot", secret="should-vanish")
    assert form.is_valid(), form.errors
    registry = save_registry(form)
    assert (registry.username, registry.secret, registry.auth_type) == ("", "", "")


def test_repository_list_is_split_trimmed_and_deduplicated():
    form = form_for(chart_source="on", repositories="charts/stable\n team/apps ,charts/stable/")
    assert form.is_valid(), form.errors
    assert save_registry(form).repositories == ["charts/stable", "team/apps"]


def test_blank_secret_on_edit_keeps_the_stored_secret():
    registry = RegistryFactory(name="team-registry", url="registry.example.com:5000")
    stored = registry.secret
    form = form_for(instance=registry, secret="", push_helm="on")
    assert form.is_valid(), form.errors
    save_registry(form)
    registry.refresh_from_db()
    assert registry.secret == stored
    assert registry.push_helm


def test_name_cannot_change_once_created():
    registry = RegistryFactory(name="team-registry")
    form = form_for(instance=registry, name="renamed")
    assert form.is_valid(), form.errors
    assert save_registry(form).name == "team-registry"


def test_first_registry_becomes_default_by_itself():
    first = saved(name="first")
    second = saved(name="second")
    assert Registry.objects.get(pk=first.pk).is_default
    assert not Registry.objects.get(pk=second.pk).is_default


def test_setting_a_default_clears_the_other():
    first = saved(name="first")
    second = saved(name="second", is_default="on")
    assert list(Registry.objects.filter(is_default=True)) == [second]
    assert not Registry.objects.get(pk=first.pk).is_default


def test_default_cannot_be_unticked_while_others_exist():
    first = saved(name="first")
    saved(name="second")
    form = form_for(instance=Registry.objects.get(pk=first.pk), name="first")
    assert not form.is_valid()
    assert "make another registry the default" in str(form.errors["is_default"])


def test_secret_is_never_rendered_back_into_the_form():
    registry = RegistryFactory(name="team-registry")
    html = RegistryForm(instance=registry).as_p()
    assert registry.secret not in html
    bound = form_for(instance=registry, secret="typed-secret-value", url="https://x")
    assert not bound.is_valid()
    assert "typed-secret-value" not in bound.as_p()
