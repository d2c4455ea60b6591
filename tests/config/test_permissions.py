"""Signing in and out, the start page, the admin and CSRF (every URL's access:
tests/config/test_every_url.py)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


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
