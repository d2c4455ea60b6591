"""The Django admin obeys the Helm repository's rules (HelmRepository.clean())."""

import pytest

from charts.models import HelmRepository
from tests.adminkit import admin_errors, admin_url, change_data

pytestmark = pytest.mark.django_db

STORED = "stored-helm-password-do-not-leak"


def admin_data(**overrides) -> dict:
    data = {
        "name": "stable",
        "url": "https://charts.example.com/stable",
        "access": "public",
        "tls_mode": "secure",
        "connection_method": "direct",
        "active": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


REFUSED = [
    ("url", {"url": "charts.example.com"}, "http:// or https:// URL"),
    ("url", {"url": "https://user:pw@charts.example.com"}, "Do not put credentials in the URL"),
    ("url", {"url": "https://charts.example.com/?page=2"}, "cannot have a ?query or #fragment"),
    ("url", {"url": "http://charts.example.com"}, "This URL is plain http://"),
    ("username", {"access": "private"}, "A private repository needs a username."),
    ("__all__", {"access": "private", "username": "reader"}, "Password: A private repository needs a password. The admin never takes secrets"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "overrides", "message"), REFUSED)
def test_admin_add_that_breaks_a_rule_is_refused_with_the_models_message(
    admin_client, field, overrides, message
):
    response = admin_client.post(admin_url(HelmRepository), admin_data(**overrides))
    assert message in " ".join(admin_errors(response).get(field, [])), admin_errors(response)
    assert not HelmRepository.objects.exists()


def test_admin_add_trims_index_yaml_and_insecure_http_is_allowed(admin_client):
    data = admin_data(url=" http://charts.example.com/stable/index.yaml/ ", tls_mode="insecure")
    assert admin_client.post(admin_url(HelmRepository), data).status_code == 302
    assert HelmRepository.objects.get().url == "http://charts.example.com/stable"


def test_admin_change_of_a_private_repository_counts_its_stored_password(admin_client):
    repository = HelmRepository.objects.create(
        name="team", url="https://charts.example.com/team", access="private",
        username="reader", password=STORED,
    )  # fmt: skip
    data = change_data(admin_client, HelmRepository, repository.pk, url=repository.url + "/v2")
    assert admin_client.post(admin_url(HelmRepository, repository.pk), data).status_code == 302
    repository.refresh_from_db()
    assert (repository.url, repository.password) == ("https://charts.example.com/team/v2", STORED)


def test_admin_change_to_public_drops_the_credentials(admin_client):
    repository = HelmRepository.objects.create(
        name="team", url="https://charts.example.com/team", access="private",
        username="reader", password=STORED,
    )  # fmt: skip
    data = change_data(admin_client, HelmRepository, repository.pk, access="public")
    assert admin_client.post(admin_url(HelmRepository, repository.pk), data).status_code == 302
    repository.refresh_from_db()
    assert (repository.username, repository.password) == ("", "")
