"""The registry form offers only the choices a provider takes, with the seed's default picked."""

import re

import pytest
from django.urls import reverse

from registries.forms import RegistryForm
from registries.providers import PROVIDERS
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def refreshed(admin_client, **data) -> str:
    """The add form as re-rendered by htmx for these choices."""
    response = admin_client.post(
        reverse("registries:registry_add"),
        {"_refresh": "1", **data},
        headers={"HX-Request": "true"},
    )
    return response.content.decode()


def test_a_new_registry_form_has_ecrs_first_authentication_type_selected(admin_client):
    form = admin_client.get(reverse("registries:registry_add")).context["form"]

    assert form["provider"].value() == "ecr"
    assert form["auth_type"].value() == "iam-role"
    assert form["registry_type"].value() == "private"


def test_each_provider_shows_its_first_authentication_type_selected(admin_client):
    for key, provider in PROVIDERS.items():
        html = refreshed(admin_client, provider=key, registry_type="private")
        if len(provider.auth_types) > 1:
            checked = re.search(
                r'<input type="radio" name="auth_type" value="([^"]+)"[^>]*checked', html
            )
            assert checked and checked.group(1) == provider.auth_types[0], key
        form = RegistryForm(initial={"provider": key})
        assert form["auth_type"].value() == provider.auth_types[0], key


def test_gcr_offers_no_public_registry_type():
    form = RegistryForm(initial={"provider": "gcr"})

    assert [value for value, _ in form.fields["registry_type"].choices] == ["private"]
    assert form["registry_type"].value() == "private"


def test_switching_a_public_registry_to_gcr_makes_it_private(admin_client):
    html = refreshed(admin_client, provider="gcr", registry_type="public")

    assert 'value="public"' not in html
    assert "Service Account JSON File" in html


def test_other_providers_offer_both_registry_types():
    form = RegistryForm(initial={"provider": "quay"})

    assert [value for value, _ in form.fields["registry_type"].choices] == ["private", "public"]


def test_another_providers_default_url_gives_way_to_this_ones(admin_client):
    gcr = RegistryForm(initial={"provider": "gcr", "url": "quay.io"})
    other = RegistryForm(initial={"provider": "other", "url": "docker.io"})
    typed = RegistryForm(initial={"provider": "gcr", "url": "docker.io/myteam"})

    assert gcr["url"].value() == "gcr.io"
    assert other["url"].value() == ""
    assert typed["url"].value() == "docker.io/myteam"


def test_an_edit_form_keeps_the_stored_url_even_if_it_is_a_providers_default():
    registry = RegistryFactory(provider="other", url="quay.io")

    assert RegistryForm(instance=registry)["url"].value() == "quay.io"
