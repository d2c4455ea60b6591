"""Personal API tokens: made on the profile page, shown once, kept only as a digest, ending
at expiry or revocation, last use remembered, acting with their user's role."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken, issue_token
from config.models import AuditEntry
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

REGISTRIES = "/api/v1/registries/"


def every_stored_text() -> str:
    """Every value of every table, as text: what someone with the database would see."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        seen = []
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            seen.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(seen)


def create_on_profile(client, name="ci", days=None):
    data = {"name": name, "days": days or 90}
    return client.post(reverse("account:profile"), data)


def shown_token(response) -> str:
    html = response.content.decode()
    start = html.index('value="wharf_') + len('value="')
    return html[start : html.index('"', start)]


def test_a_token_made_on_the_profile_page_is_shown_once_and_works(client, users):
    client.force_login(users["admin"])

    made = create_on_profile(client, "terraform")
    text = shown_token(made)

    assert made.status_code == 200 and made["Cache-Control"] == "no-store"
    assert bearer(text).get(REGISTRIES).status_code == 200
    again = client.get(reverse("account:profile")).content.decode()
    assert "terraform" in again and text not in again


def test_no_token_is_found_anywhere_in_the_database(client, users):
    client.force_login(users["admin"])
    text = shown_token(create_on_profile(client, "pipeline"))
    bearer(text).get(REGISTRIES)

    stored = every_stored_text()

    assert ApiToken.objects.filter(name="pipeline").exists()
    assert text not in stored
    assert text.removeprefix("wharf_") not in stored


def test_a_token_lasts_90_days_unless_chosen_and_a_year_at_most(client, users):
    client.force_login(users["viewer"])
    token, _ = issue_token(users["viewer"], "default")
    assert abs(token.expires_at - timezone.now() - timedelta(days=90)) < timedelta(minutes=1)

    refused = create_on_profile(client, "too-long", days=366)

    assert refused.status_code == 200
    assert "365" in refused.content.decode()
    assert not ApiToken.objects.filter(name="too-long").exists()


def test_an_expired_token_is_refused(users, time_machine):
    time_machine.move_to("2026-01-01 08:00Z", tick=False)
    _, text = issue_token(users["viewer"], "short", days=1)
    assert bearer(text).get("/api/v1/charts/").status_code == 200

    time_machine.shift(timedelta(days=1, seconds=1))

    response = bearer(text).get("/api/v1/charts/")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("This API token is not valid")


def test_a_revoked_token_is_refused_at_once(client, users):
    token, text = issue_token(users["viewer"], "laptop")
    client.force_login(users["viewer"])

    client.post(reverse("account:apitoken_revoke"), {"token": token.pk})

    assert bearer(text).get("/api/v1/charts/").status_code == 401
    assert "revoked" in client.get(reverse("account:profile")).content.decode()


def test_no_one_revokes_another_users_token(client, users):
    token, text = issue_token(users["admin"], "theirs")
    client.force_login(users["viewer"])

    client.post(reverse("account:apitoken_revoke"), {"token": token.pk})

    assert bearer(text).get("/api/v1/charts/").status_code == 200


def test_the_last_use_is_shown(client, users, time_machine):
    time_machine.move_to("2026-03-04 05:06Z", tick=False)
    token, text = issue_token(users["viewer"], "cron")
    client.force_login(users["viewer"])
    assert "never" in client.get(reverse("account:profile")).content.decode()

    bearer(text).get("/api/v1/charts/")

    token.refresh_from_db()
    assert token.last_used_at == timezone.now()
    assert "2026-03-04 05:06" in client.get(reverse("account:profile")).content.decode()


def test_a_token_of_a_deactivated_user_is_refused(users):
    _, text = issue_token(users["admin"], "gone")
    users["admin"].is_active = False
    users["admin"].save()

    assert bearer(text).get(REGISTRIES).status_code == 401


def test_a_token_acts_with_its_users_role(api):
    assert api("viewer").get("/api/v1/charts/").status_code == 200
    assert api("viewer").get(REGISTRIES).status_code == 403
    assert api("admin").get(REGISTRIES).status_code == 200


def test_making_and_revoking_a_token_is_in_the_audit_log(client, users):
    client.force_login(users["viewer"])
    create_on_profile(client, "audited")
    token = ApiToken.objects.get(name="audited")
    client.post(reverse("account:apitoken_revoke"), {"token": token.pk})

    entries = AuditEntry.objects.filter(object_type="API token").order_by("id")
    assert [e.action for e in entries] == [AuditEntry.Action.CREATE, AuditEntry.Action.UPDATE]
    assert all(e.username == "viewer-1" for e in entries)


def test_session_writes_need_the_csrf_token(users):
    from rest_framework.test import APIClient

    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(users["admin"])

    response = strict.put(
        "/api/v1/clusters/kind/", {"api_url": "https://127.0.0.1:6443"}, format="json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
