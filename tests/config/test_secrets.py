"""Secrets are encrypted at rest and never reach a page, the admin, or a log."""

import io
import logging

import pytest
from django.db import connection
from django.urls import reverse

from config import crypto
from tests.factories import RegistryFactory, registry_form_data

pytestmark = pytest.mark.django_db

SECRET = "plaintext-secret-7f3a9c-do-not-leak"


def raw_row(registry_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM registries_registry WHERE id = %s", [registry_id])
        return " ".join(str(v) for v in cursor.fetchone())


def test_database_row_holds_no_plaintext_secret():
    registry = RegistryFactory(secret=SECRET, ssh_password=SECRET + "-ssh")
    row = raw_row(registry.pk)
    assert SECRET not in row
    assert crypto.PREFIX in row
    registry.refresh_from_db()
    assert registry.secret == SECRET


def test_secrets_stay_readable_after_key_rotation(settings):
    registry = RegistryFactory(secret=SECRET)
    new_key = "QmlWNHpJVHJnQ0xzT0J0WjJDR1lRcG1VR0x2Rjd3Y0k="
    settings.WHARF_ENCRYPTION_KEYS = [new_key, *settings.WHARF_ENCRYPTION_KEYS]
    registry.refresh_from_db()
    assert registry.secret == SECRET


def test_no_page_contains_a_stored_secret(admin_client):
    registry = RegistryFactory(name="leaky", secret=SECRET, is_default=True)
    pages = [
        reverse("registries:registry_list"),
        reverse("registries:registry_edit", args=[registry.pk]),
        reverse("registries:registry_delete", args=[registry.pk]),
        reverse("config:auditentry_list"),
        "/admin/registries/registry/",
        f"/admin/registries/registry/{registry.pk}/change/",
        "/admin/wharf/auditentry/",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert SECRET not in response.content.decode(), url


def test_error_page_of_a_failed_edit_contains_no_secret(admin_client):
    registry = RegistryFactory(name="team-registry", secret=SECRET)
    response = admin_client.post(
        reverse("registries:registry_edit", args=[registry.pk]),
        registry_form_data(url="http://bad", secret="typed-" + SECRET),
    )
    html = response.content.decode()
    assert "Drop the scheme" in html
    assert SECRET not in html


def test_repr_and_str_never_show_a_secret():
    registry = RegistryFactory(secret=SECRET)
    assert SECRET not in repr(registry) and SECRET not in str(registry)


def test_saving_a_registry_logs_no_secret(admin_client, caplog):
    with caplog.at_level(logging.DEBUG):
        admin_client.post(reverse("registries:registry_add"), registry_form_data(secret=SECRET))
    assert SECRET not in caplog.text


def test_rotate_keys_reencrypts_so_the_old_key_can_be_dropped(settings):
    from django.core.management import call_command

    old_keys = list(settings.WHARF_ENCRYPTION_KEYS)
    registry = RegistryFactory(secret=SECRET)
    new_key = "QmlWNHpJVHJnQ0xzT0J0WjJDR1lRcG1VR0x2Rjd3Y0k="
    settings.WHARF_ENCRYPTION_KEYS = [new_key, *old_keys]
    call_command("rotate_keys", stdout=io.StringIO())
    settings.WHARF_ENCRYPTION_KEYS = [new_key]
    registry.refresh_from_db()
    assert registry.secret == SECRET
    assert SECRET not in raw_row(registry.pk)
