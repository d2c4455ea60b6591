"""`manage.py ensure_admin`: the first superuser, created once."""

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import RequestFactory


def signin_request():
    """Sign-ins are throttled per client (django-axes), so authenticate() takes the request."""
    return RequestFactory().post("/accounts/login/")


pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_admin_gets_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("WHARF_ADMIN_PASSWORD", "from-the-env-123")
    output = run()
    assert "from-the-env-123" not in output
    assert authenticate(
        signin_request(), username="admin", password="from-the-env-123"
    ).is_superuser


def test_generated_password_is_printed_once_and_works(monkeypatch):
    monkeypatch.delenv("WHARF_ADMIN_PASSWORD", raising=False)
    output = run()
    password = output.strip().splitlines()[-1].strip()
    assert authenticate(signin_request(), username="admin", password=password) is not None
    assert password not in run()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_admin_password_can_come_from_a_mounted_secret_file(monkeypatch, tmp_path):
    secret = tmp_path / "admin-password"
    secret.write_text("from-a-file-456\n")
    monkeypatch.delenv("WHARF_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("WHARF_ADMIN_PASSWORD_FILE", str(secret))
    output = run()
    assert "from-a-file-456" not in output
    assert authenticate(signin_request(), username="admin", password="from-a-file-456")
