"""Signing in with a directory account (django-auth-ldap) against Debian's slapd: the
user is made from the directory, their groups mirrored into Django groups, a local
account is never taken over, failures are throttled and an unreachable directory is named.

python-ldap is an extra (`make install-ldap`): without it these tests skip, and under
WHARF_REQUIRE_SERVICES=1 (CI) they fail."""

from __future__ import annotations

import time

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from config import ldapconfig
from tests.hostile import DrippingServer
from tests.servers.base import free_port, service_unavailable
from tests.servers.ldap import GROUPS, PEOPLE, USERS

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def use_directory(settings, variables: dict[str, str]) -> None:
    """What config/settings.py does with these WHARF_LDAP_* values."""
    for name, value in ldapconfig.auth_ldap_settings(variables).items():
        setattr(settings, name, value)
    backends = list(settings.AUTHENTICATION_BACKENDS)
    backends.insert(2, "config.signin_ldap.WharfLDAPBackend")
    settings.AUTHENTICATION_BACKENDS = backends


@pytest.fixture
def directory(settings, slapd):
    if not ldapconfig.ldap_importable():
        service_unavailable("python-ldap is not installed (make install-ldap)")
    use_directory(settings, slapd.wharf_variables())
    return slapd


def sign_in(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def password_of(uid: str) -> str:
    return USERS[uid][0]


def signed_in_user(client, django_user_model):
    user_id = client.session.get("_auth_user_id")
    return django_user_model.objects.get(pk=user_id) if user_id else None


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_a_directory_user_signs_in_and_is_made_with_their_groups(
    client, directory, django_user_model
):
    response = sign_in(client, "alice", password_of("alice"))

    assert response.status_code == 302
    user = signed_in_user(client, django_user_model)
    assert (user.username, user.first_name, user.last_name) == ("alice", "Alice", "Andersen")
    assert user.email == "alice@wharf.test"
    assert group_names(user) == {"platform", "developers"}
    assert not user.has_usable_password()
    assert client.session["_auth_user_backend"] == "config.signin_ldap.WharfLDAPBackend"


def test_a_directory_user_in_no_group_is_in_no_django_group(client, directory, django_user_model):
    sign_in(client, "carol", password_of("carol"))

    assert group_names(signed_in_user(client, django_user_model)) == set()


def test_a_group_change_in_the_directory_is_mirrored_at_the_next_sign_in(
    client, directory, django_user_model
):
    import ldap

    sign_in(client, "bob", password_of("bob"))
    member = f"uid=bob,{PEOPLE}".encode()
    directory.modify(f"cn=auditors,{GROUPS}", [(ldap.MOD_ADD, "member", [member])])
    directory.modify(f"cn=developers,{GROUPS}", [(ldap.MOD_DELETE, "member", [member])])
    try:
        sign_in(Client(), "bob", password_of("bob"))
    finally:
        directory.modify(f"cn=developers,{GROUPS}", [(ldap.MOD_ADD, "member", [member])])
        directory.modify(f"cn=auditors,{GROUPS}", [(ldap.MOD_DELETE, "member", [member])])

    assert group_names(django_user_model.objects.get(username="bob")) == {"auditors"}


def test_a_wrong_directory_password_is_refused_and_counted(client, directory):
    response = sign_in(client, "alice", "not-her-password")

    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert "could not be reached" not in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get().failures_since_start == 1


def test_throttling_locks_out_directory_sign_ins_too(client, directory, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "alice", "wrong")

    response = sign_in(client, "alice", password_of("alice"))

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_directory_entry_never_signs_in_to_a_local_account_of_the_same_name(
    client, directory, django_user_model
):
    local = django_user_model.objects.create_superuser("bob", password="local-bob-Passw0rd")

    with_directory_password = sign_in(client, "bob", password_of("bob"))
    with_local_password = sign_in(Client(), "bob", "local-bob-Passw0rd")

    assert with_directory_password.status_code == 200  # refused
    assert with_local_password.status_code == 302
    local.refresh_from_db()
    assert local.is_superuser and group_names(local) == set()


def test_an_unreachable_directory_is_named_on_the_sign_in_page(client, settings, directory):
    unreachable = {
        **directory.wharf_variables(),
        "WHARF_LDAP_SERVER_URI": f"ldap://127.0.0.1:{free_port()}",
    }
    use_directory(settings, unreachable)

    response = sign_in(client, "alice", password_of("alice"))

    assert response.status_code == 200
    assert "The directory (LDAP) could not be reached" in response.content.decode()


def test_a_directory_that_never_answers_is_given_up_at_the_timeout(client, settings, directory):
    # The server takes the connection and waits for an HTTP request that LDAP never sends:
    # it says nothing back for 5 s.
    with DrippingServer(give_up=20) as silent:
        variables = {
            **directory.wharf_variables(),
            "WHARF_LDAP_SERVER_URI": f"ldap://{silent.host}",
        }
        use_directory(settings, {**variables, "WHARF_LDAP_TIMEOUT": "1"})
        started = time.monotonic()
        response = sign_in(client, "alice", password_of("alice"))
        took = time.monotonic() - started

    assert "The directory (LDAP) could not be reached" in response.content.decode()
    assert took < 4, took


def test_local_accounts_still_sign_in_beside_the_directory(client, directory, superuser):
    assert sign_in(client, "root", "root-password-1").status_code == 302
