"""Every URL, for anonymous, a plain user and a superuser."""

import pytest
from django.urls import reverse

from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

GLOBAL_CONFIG_PAGES = [
    ("get", "registries:registry_list", False),
    ("get", "registries:registry_add", False),
    ("post", "registries:registry_add", False),
    ("get", "registries:registry_edit", True),
    ("post", "registries:registry_edit", True),
    ("get", "registries:registry_delete", True),
    ("post", "registries:registry_delete", True),
    ("post", "registries:registry_make_default", True),
    ("get", "config:auditentry_list", False),
]


@pytest.fixture
def registry():
    return RegistryFactory(is_default=True)


def url_of(name, needs_pk, registry):
    return reverse(name, args=[registry.pk] if needs_pk else [])


@pytest.mark.parametrize(
    ("method", "name", "needs_pk"), [*GLOBAL_CONFIG_PAGES, ("get", "home", False)]
)
def test_anonymous_is_sent_to_sign_in(client, registry, method, name, needs_pk):
    url = url_of(name, needs_pk, registry)
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("method", "name", "needs_pk"), GLOBAL_CONFIG_PAGES)
def test_plain_user_gets_a_clear_403(user_client, registry, method, name, needs_pk):
    response = getattr(user_client, method)(url_of(name, needs_pk, registry))
    assert response.status_code == 403
    assert "Only superusers" in response.content.decode()
    registry.refresh_from_db()  # still there, unchanged


@pytest.mark.parametrize(
    ("name", "needs_pk"), [(n, pk) for m, n, pk in GLOBAL_CONFIG_PAGES if m == "get"]
)
def test_superuser_sees_every_global_configuration_page(admin_client, registry, name, needs_pk):
    assert admin_client.get(url_of(name, needs_pk, registry)).status_code == 200


def test_plain_user_lands_on_the_chart_store_without_global_configurations(user_client):
    response = user_client.get(reverse("home"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("charts:chart_list")
    assert response.status_code == 200
    assert "Global Configurations" not in response.content.decode().split("<main")[0]


def test_plain_user_is_kept_out_of_the_admin(user_client):
    response = user_client.get("/admin/")
    assert response.status_code == 302


def test_sign_in_page_needs_no_sign_in(client):
    assert client.get(reverse("login")).status_code == 200


def test_sign_in_then_sign_out(client, superuser):
    response = client.post(reverse("login"), {"username": "root", "password": "root-password-1"})
    assert response.status_code == 302
    assert client.get(reverse("registries:registry_list")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("registries:registry_list")).status_code == 302


def test_forms_are_csrf_protected(superuser):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(superuser)
    response = strict.post(reverse("registries:registry_add"), {"name": "x"})
    assert response.status_code == 403


def test_no_page_shows_template_comments_or_tags(admin_client, registry):
    # Django's {# #} comments are one line only: a multi-line one is printed as text.
    for name, needs_pk in [
        ("registries:registry_add", False),
        ("registries:registry_edit", True),
        ("registries:registry_list", False),
    ]:
        html = admin_client.get(url_of(name, needs_pk, registry)).content.decode()
        assert "{#" not in html and "{%" not in html and "{{" not in html
