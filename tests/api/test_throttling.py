"""Failed API tokens are throttled as failed sign-ins are: the same per-address counter."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.urls import reverse

from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db

URL = "/api/v1/charts/"


def test_after_the_limit_even_a_right_token_is_refused_with_429(tokens, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert bearer("wharf_wrong").get(URL).status_code == 401
    locking = bearer("wharf_wrong").get(URL)

    right = bearer(tokens["viewer"]).get(URL)

    assert locking.status_code == 429
    assert right.status_code == 429
    assert "Too many failed" in right.json()["detail"]
    assert right["Content-Type"].startswith("application/json")
    assert int(right["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())


def test_failed_tokens_and_failed_sign_ins_share_one_counter(client, users, tokens, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        bearer("wharf_wrong").get(URL)

    signin = client.post(reverse("login"), {"username": "viewer-1", "password": "wrong"})

    assert signin.status_code == 429


def test_no_token_text_is_kept_in_the_attempt_records(tokens):
    bearer("wharf_a-guessed-token-value").get(URL)

    kept = [str(vars(a)) for a in AccessAttempt.objects.all()]
    assert kept and not any("a-guessed-token-value" in record for record in kept)


def test_an_admin_clearing_the_lockout_lets_the_token_in(tokens, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        bearer("wharf_wrong").get(URL)

    call_command("axes_reset_ip", "127.0.0.1")

    assert bearer(tokens["viewer"]).get(URL).status_code == 200


def test_the_lockout_ends_after_the_cool_off(tokens, settings, time_machine):
    time_machine.move_to("2026-06-01 08:00Z", tick=False)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        bearer("wharf_wrong").get(URL)
    time_machine.shift(settings.AXES_COOLOFF_TIME * 1.1)

    assert bearer(tokens["viewer"]).get(URL).status_code == 200
