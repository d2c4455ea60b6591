"""Local accounts (Django's users with a password): for everyone by default, for
superusers only with WHARF_LOCAL_SIGN_IN=superusers (the first admin from ensure_admin and
break-glass accounts), and throttled either way. The settings that switch sign-in
methods on are read at start-up: checked in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def superusers_only(settings):
    settings.WHARF_LOCAL_SIGN_IN = "superusers"


def sign_in(client, username: str, password: str, url: str = ""):
    return client.post(url or reverse("login"), {"username": username, "password": password})


def test_by_default_every_local_account_signs_in(client, plain_user):
    assert sign_in(client, "viewer", "viewer-password-1").status_code == 302


def test_switched_off_a_plain_local_account_is_refused_saying_who_may(
    client, plain_user, superusers_only
):
    response = sign_in(client, "viewer", "viewer-password-1")

    assert response.status_code == 200
    assert "Local accounts are for administrators only" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_switched_off_superusers_still_sign_in(client, superuser, superusers_only):
    assert sign_in(client, "root", "root-password-1").status_code == 302


def test_switched_off_the_first_admin_from_ensure_admin_signs_in(
    client, superusers_only, monkeypatch
):
    monkeypatch.setenv("WHARF_ADMIN_PASSWORD", "first-admin-Passw0rd")
    call_command("ensure_admin", stdout=open(os.devnull, "w"))  # noqa: SIM115

    assert sign_in(client, "admin", "first-admin-Passw0rd").status_code == 302


def test_switched_off_the_django_admin_refuses_a_plain_staff_account_too(
    client, django_user_model, superusers_only
):
    django_user_model.objects.create_user("staff", password="staff-Passw0rd-1", is_staff=True)

    sign_in(client, "staff", "staff-Passw0rd-1", url=reverse("admin:login"))

    assert "_auth_user_id" not in client.session


def test_switched_off_wrong_passwords_are_still_throttled(
    client, superuser, superusers_only, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "root", "wrong")

    assert sign_in(client, "root", "root-password-1").status_code == 429


def test_the_sign_in_page_says_local_accounts_are_for_administrators(client, superusers_only):
    html = client.get(reverse("login")).content.decode()

    assert "Local accounts are for administrators only." in html


# --- start-up settings -------------------------------------------------------------------

PROBE = (
    "import sys, json\n"
    "if sys.argv[1] == 'no-ldap': sys.modules['ldap'] = None  # as on a laptop without it\n"
    "import django; django.setup()\n"
    "from django.conf import settings as s; from django.core import checks\n"
    "print(json.dumps({'backends': s.AUTHENTICATION_BACKENDS, "
    "'checks': [m.id for m in checks.run_checks()], 'local': s.WHARF_LOCAL_SIGN_IN}))\n"
)


def start(tmp_path, *, block_ldap: bool = False, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "DEBUG"))}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", "WHARF_VAR_DIR": str(tmp_path),
                  "DEBUG": "1"}, **env)  # fmt: skip
    argv = [sys.executable, "-c", PROBE, "no-ldap" if block_ldap else "-"]
    return subprocess.run(argv, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


LDAP_ENV = {
    "WHARF_LDAP_SERVER_URI": "ldap://127.0.0.1:9",
    "WHARF_LDAP_USER_BASE": "ou=people,dc=wharf,dc=test",
    "WHARF_LDAP_GROUP_BASE": "ou=groups,dc=wharf,dc=test",
}


def test_with_nothing_configured_only_local_accounts_sign_in(tmp_path):
    result = start(tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backends"] == [
        "axes.backends.AxesStandaloneBackend",
        "config.signin.LocalAccountBackend",
    ]


def test_an_issuer_turns_openid_connect_on(tmp_path):
    result = start(
        tmp_path, WHARF_OIDC_ISSUER="https://id.example.test/realms/x/",
        WHARF_OIDC_CLIENT_ID="wharf", WHARF_OIDC_CLIENT_SECRET="s3cret",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["backends"][-1] == "config.signin.OidcBackend"


def test_an_issuer_without_client_credentials_stops_start_up_saying_so(tmp_path):
    result = start(tmp_path, WHARF_OIDC_ISSUER="https://id.example.test")

    assert result.returncode != 0
    assert "WHARF_OIDC_CLIENT_ID and WHARF_OIDC_CLIENT_SECRET must be" in result.stderr


def test_a_wrong_local_sign_in_value_stops_start_up_saying_so(tmp_path):
    result = start(tmp_path, WHARF_LOCAL_SIGN_IN="nobody")

    assert result.returncode != 0
    assert 'WHARF_LOCAL_SIGN_IN must be "everyone" or "superusers"' in result.stderr


def test_ldap_configured_without_python_ldap_starts_with_ldap_off_and_says_why(tmp_path):
    result = start(tmp_path, block_ldap=True, **LDAP_ENV)

    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert "config.signin_ldap.WharfLDAPBackend" not in probe["backends"]
    assert "wharf.W001" in probe["checks"]
    assert "LDAP sign-in is off" in result.stderr and "make install-ldap" in result.stderr


def test_ldap_configured_with_python_ldap_is_tried_after_local_accounts(tmp_path):
    from config import ldapconfig
    from tests.servers.base import service_unavailable

    if not ldapconfig.ldap_importable():
        service_unavailable("python-ldap is not installed (make install-ldap)")

    result = start(tmp_path, **LDAP_ENV)

    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["backends"][2] == "config.signin_ldap.WharfLDAPBackend"
    assert "wharf.W001" not in probe["checks"]
