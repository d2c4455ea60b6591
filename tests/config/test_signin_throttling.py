"""Failed sign-ins are throttled per client address (django-axes), and an admin can clear it."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-42"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ops", password=PASSWORD)


def sign_in(client, password: str, **meta):
    return client.post(reverse("login"), {"username": "ops", "password": password}, **meta)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_after_the_limit_even_the_right_password_is_refused_with_a_clear_page(
    client, user, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "wrong").status_code == 200  # the form says why, again
    assert sign_in(client, "wrong").status_code == 429  # the limit-th one locks

    response = sign_in(client, PASSWORD)

    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert not signed_in(client)


def test_an_admin_clearing_the_lockout_lets_the_user_in(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong")

    call_command("axes_reset_ip", "127.0.0.1")

    assert sign_in(client, PASSWORD).status_code == 302
    assert signed_in(client)


def test_the_lockout_ends_after_the_cool_off(client, user, settings, time_machine):
    time_machine.move_to("2026-06-01 08:00Z", tick=False)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong")
    time_machine.shift(settings.AXES_COOLOFF_TIME * 1.1)

    assert sign_in(client, PASSWORD).status_code == 302


def test_a_forwarded_for_header_is_not_believed_when_wharf_is_not_behind_a_proxy(
    client, user, settings
):
    settings.WHARF_TRUSTED_PROXIES = 0
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    response = sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert response.status_code == 429  # the guesses all came from 127.0.0.1
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_behind_a_proxy_each_client_address_is_counted_on_its_own(client, user, settings):
    settings.WHARF_TRUSTED_PROXIES = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        # What the client wrote (left) is ignored; the proxy appended the real address.
        sign_in(client, "wrong", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.5")

    locked = sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5")
    other = sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert locked.status_code == 429
    assert other.status_code == 302  # another client behind the same proxy is not locked
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}


def test_no_password_is_kept_in_the_attempt_records(client, user):
    sign_in(client, "a-wrong-Passw0rd-guess")

    kept = [str(vars(a)) for a in AccessAttempt.objects.all()]
    kept += [str(vars(a)) for a in AccessFailureLog.objects.all()]
    assert kept and not any("a-wrong-Passw0rd-guess" in record for record in kept)


def test_the_django_admin_sign_in_is_throttled_too(client, user, settings):
    url = reverse("admin:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "ops", "password": "wrong"})

    response = client.post(url, {"username": "ops", "password": PASSWORD})

    assert response.status_code == 429
