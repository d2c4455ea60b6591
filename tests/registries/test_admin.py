"""The Django admin obeys the registry's rules (Registry.clean()), and what it saves can then
be edited on Wharf's own form."""

import pytest
from django.urls import reverse

from registries.models import Registry
from tests.adminkit import admin_errors, admin_url, change_data
from tests.factories import GCP_KEY, RegistryFactory

pytestmark = pytest.mark.django_db


def admin_data(**overrides) -> dict:
    """An admin add of a public "Other" registry (the admin takes no secrets)."""
    data = {
        "name": "admin-made",
        "provider": "other",
        "registry_type": "public",
        "url": "registry.example.com",
        "connection_method": "direct",
        "tls_mode": "secure",
        "push_images": "on",
        "repositories": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def wharf_form_data(client, registry) -> dict:
    """What Wharf's edit page of ``registry`` posts when saved unchanged."""
    form = client.get(reverse("registries:registry_edit", args=[registry.pk])).context["form"]
    data = {"save_without_checking": "on"}
    for name in form.fields:
        value = form[name].value()
        if value not in (None, False, ""):
            data[name] = "on" if value is True else value
    return data


REFUSED = [
    ("url", {"url": "https://registry.example.com"}, "Drop the scheme"),
    ("url", {"provider": "acr", "url": "example.com"}, "azurecr.io"),
    ("registry_type", {"provider": "gcr", "url": "gcr.io"}, "cannot be a public registry"),
    ("push_images", {"push_images": None}, "Tick at least one"),
    ("repositories", {"chart_source": "on"}, "List at least one repository"),
    ("repositories", {"chart_source": "on", "repositories": "charts\nBad Repo"}, "Not a repository path: Bad Repo"),
    ("auth_type", {"registry_type": "private", "provider": "quay", "url": "quay.io", "auth_type": "json-key"}, "does not offer"),
    ("__all__", {"registry_type": "private", "auth_type": "password", "username": "robot"}, "Secret: Enter the password/token. The admin never takes secrets"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "overrides", "message"), REFUSED)
def test_admin_add_that_breaks_a_rule_is_refused_with_the_models_message(
    admin_client, field, overrides, message
):
    response = admin_client.post(admin_url(Registry), admin_data(**overrides))
    assert message in " ".join(admin_errors(response).get(field, [])), admin_errors(response)
    assert not Registry.objects.exists()


def test_admin_change_that_gives_gcr_helm_packages_is_refused_and_changes_nothing(admin_client):
    registry = RegistryFactory(
        provider="gcr", url="gcr.io/team", auth_type="json-key", secret=GCP_KEY
    )
    response = admin_client.post(
        admin_url(Registry, registry.pk),
        change_data(admin_client, Registry, registry.pk, push_helm="on"),
    )
    assert "not an OCI registry" in " ".join(admin_errors(response)["push_helm"])
    registry.refresh_from_db()
    assert not registry.push_helm


def test_admin_change_of_a_private_registry_counts_its_stored_secret(admin_client):
    registry = RegistryFactory(url="registry.example.com")
    stored = registry.secret
    response = admin_client.post(
        admin_url(Registry, registry.pk),
        change_data(admin_client, Registry, registry.pk, username="  deployer "),
    )
    assert response.status_code == 302
    registry.refresh_from_db()
    assert (registry.username, registry.secret) == ("deployer", stored)


def test_admin_change_to_a_json_key_provider_is_refused_when_the_stored_secret_is_no_key(
    admin_client,
):
    registry = RegistryFactory(url="registry.example.com")
    data = change_data(
        admin_client, Registry, registry.pk,
        provider="gcp-ar", url="europe-west1-docker.pkg.dev", auth_type="json-key",
    )  # fmt: skip
    errors = admin_errors(admin_client.post(admin_url(Registry, registry.pk), data))
    assert "not valid JSON" in " ".join(errors["__all__"])
    assert registry.secret not in str(errors)
    registry.refresh_from_db()
    assert registry.provider == "other"


def test_admin_add_normalises_like_wharfs_form(admin_client):
    data = admin_data(
        url="  Registry.Example.COM:5000/team/ ", username="robot", chart_source="on",
        repositories="charts/stable/\n team/apps\r\n\ncharts/stable",
    )  # fmt: skip
    assert admin_client.post(admin_url(Registry), data).status_code == 302
    registry = Registry.objects.get(name="admin-made")
    assert registry.url == "registry.example.com:5000/team"
    assert registry.username == ""  # a public registry keeps no credentials
    assert registry.repositories == ["charts/stable", "team/apps"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="public-other"),
        pytest.param(
            {"provider": "docker-hub", "url": "docker.io/team", "chart_source": "on",
             "repositories": "charts"},
            id="public-docker-hub-chart-source",
        ),
        pytest.param(
            {"provider": "ecr", "registry_type": "private", "auth_type": "iam-role",
             "url": "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "push_helm": "on"},
            id="private-ecr-iam-role",
        ),
    ],
)  # fmt: skip
def test_a_registry_saved_through_the_admin_can_be_edited_on_wharfs_form(admin_client, overrides):
    assert admin_client.post(admin_url(Registry), admin_data(**overrides)).status_code == 302
    registry = Registry.objects.get(name="admin-made")
    before = {f: getattr(registry, f) for f in ("provider", "url", "auth_type", "repositories")}

    response = admin_client.post(
        reverse("registries:registry_edit", args=[registry.pk]),
        wharf_form_data(admin_client, registry),
    )

    assert response.status_code == 302, response.context["form"].errors
    registry.refresh_from_db()
    assert {f: getattr(registry, f) for f in before} == before


def test_the_admin_shows_the_repository_list_one_per_line(admin_client):
    registry = RegistryFactory(chart_source=True, repositories=["charts/stable", "team/apps"])

    html = admin_client.get(admin_url(Registry, registry.pk)).content.decode()

    assert '<textarea name="repositories"' in html
    assert "charts/stable\nteam/apps</textarea>" in html
    assert "[&quot;charts/stable&quot;" not in html
    assert "One repository path per line" in html


def test_an_admin_save_unchanged_keeps_the_repository_list(admin_client):
    registry = RegistryFactory(chart_source=True, repositories=["charts/stable", "team/apps"])

    data = change_data(admin_client, Registry, registry.pk)
    assert admin_client.post(admin_url(Registry, registry.pk), data).status_code == 302

    registry.refresh_from_db()
    assert registry.repositories == ["charts/stable", "team/apps"]
