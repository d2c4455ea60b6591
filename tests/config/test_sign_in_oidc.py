"""Signing in with OpenID Connect against a real provider (oidc-provider-mock): discovery,
RS256 ID tokens, groups from the configured claim mirrored into Django groups, and a
message on the sign-in page (never an error page) whatever the provider does."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from social_django.models import UserSocialAuth

from tests.hostile import DrippingServer
from tests.servers.base import free_port
from tests.servers.oidc import CLIENT_SECRET, OidcProvider

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def start_sign_in(client, next_url: str = ""):
    response = client.post(reverse("oidc_begin"), {"next": next_url} if next_url else {})
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def sign_in_with_sso(client, provider: OidcProvider, sub: str, next_url: str = ""):
    """The SSO button, the provider's form as ``sub``, and the way back to Wharf."""
    return client.get(provider.authorize(start_sign_in(client, next_url), sub))


def signed_in_user(client, django_user_model):
    user_id = client.session.get("_auth_user_id")
    return django_user_model.objects.get(pk=user_id) if user_id else None


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


@pytest.fixture
def provider(wharf_oidc, request) -> OidcProvider:
    return wharf_oidc


def unique_sub(request) -> str:
    # One provider serves the whole session: each test has subjects of its own.
    return f"{request.node.name}@idp.test"


def test_the_sign_in_page_offers_the_configured_button_and_lets_its_form_reach_the_provider(
    client, provider, settings
):
    settings.WHARF_OIDC_BUTTON_LABEL = "Sign in with Acme ID"

    response = client.get(reverse("login"))

    html = response.content.decode()
    assert "Sign in with Acme ID" in html
    assert f'action="{reverse("oidc_begin")}"' in html
    # The button's POST is redirected to the provider: form-action must allow its origin.
    assert provider.url in response["Content-Security-Policy"].split("form-action")[1]
    assert CLIENT_SECRET not in html


def test_the_button_starts_the_code_flow_found_by_discovery(client, provider):
    location = start_sign_in(client)

    assert location.startswith(f"{provider.url}/oauth2/authorize?")
    for parameter in ("response_type=code", "code_challenge=", "nonce=", "state="):
        assert parameter in location


def test_a_first_sign_in_makes_a_user_in_the_groups_of_the_claim(
    client, provider, request, django_user_model
):
    sub = unique_sub(request)
    provider.add_user(
        sub, preferred_username="alice", email="alice@idp.test", groups=["platform", "devs"]
    )

    response = sign_in_with_sso(client, provider, sub)

    assert response.status_code == 302 and response["Location"] == "/"
    user = signed_in_user(client, django_user_model)
    assert user.username == "alice" and user.email == "alice@idp.test"
    assert group_names(user) == {"platform", "devs"}
    assert not user.is_superuser and not user.is_staff
    assert not user.has_usable_password()  # no local password: SSO only
    assert client.session["_auth_user_backend"] == "config.signin.OidcBackend"
    assert client.get(reverse("charts:chart_list")).status_code == 200


def test_groups_are_mirrored_again_at_every_sign_in(client, provider, request, django_user_model):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="dora", groups=["platform", "devs"])
    sign_in_with_sso(client, provider, sub)
    Group.objects.create(name="local-only")

    provider.add_user(sub, preferred_username="dora", groups=["devs", "sre"])
    sign_in_with_sso(Client(), provider, sub)

    user = django_user_model.objects.get(username="dora")
    assert group_names(user) == {"devs", "sre"}
    assert Group.objects.filter(name="platform").exists()  # left for its other members


def test_the_groups_come_from_the_configured_claim(
    client, provider, request, settings, django_user_model
):
    settings.SOCIAL_AUTH_OIDC_GROUPS_KEY = "wharf_teams"
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="erin", groups=["not-this"], wharf_teams=["ops"])

    sign_in_with_sso(client, provider, sub)

    assert group_names(signed_in_user(client, django_user_model)) == {"ops"}


def test_a_user_whose_token_has_no_groups_claim_is_in_no_group(
    client, provider, request, django_user_model
):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="fred", groups=["devs"])
    sign_in_with_sso(client, provider, sub)

    provider.add_user(sub, preferred_username="fred")
    sign_in_with_sso(Client(), provider, sub)

    assert group_names(django_user_model.objects.get(username="fred")) == set()


def test_a_person_is_known_by_the_subject_not_by_a_name_they_may_change(
    client, provider, request, django_user_model
):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="gina")
    sign_in_with_sso(client, provider, sub)
    provider.add_user(sub, preferred_username="gina.renamed")

    second = Client()
    sign_in_with_sso(second, provider, sub)

    assert signed_in_user(second, django_user_model).username == "gina"
    assert django_user_model.objects.count() == 1


def test_an_sso_name_equal_to_a_local_account_never_signs_in_to_that_account(
    client, provider, request, django_user_model
):
    admin = django_user_model.objects.create_superuser("admin", password="admin-Passw0rd-1")
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="admin", email="someone@idp.test")

    sign_in_with_sso(client, provider, sub)

    user = signed_in_user(client, django_user_model)
    assert user.pk != admin.pk and user.username != "admin"
    assert not user.is_superuser


def test_the_page_asked_for_before_signing_in_is_where_sso_lands(client, provider, request):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="hank")

    response = sign_in_with_sso(client, provider, sub, next_url="/charts/")

    assert response.status_code == 302 and response["Location"] == "/charts/"


def test_a_next_address_on_another_site_is_not_followed(client, provider, request):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="ivy")

    response = sign_in_with_sso(client, provider, sub, next_url="https://evil.example/x")

    assert response.status_code == 302 and "evil.example" not in response["Location"]


def test_no_token_from_the_provider_is_kept(client, provider, request):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="jack", groups=["devs"])

    sign_in_with_sso(client, provider, sub)

    link = UserSocialAuth.objects.get(uid=sub)
    assert link.provider == "oidc"
    kept = str(link.extra_data)
    assert "token" not in kept and "eyJ" not in kept


def test_a_deactivated_user_is_told_so_and_not_signed_in(
    client, provider, request, django_user_model
):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="kate")
    sign_in_with_sso(Client(), provider, sub)
    django_user_model.objects.filter(username="kate").update(is_active=False)

    response = sign_in_with_sso(client, provider, sub)
    page = client.get(response["Location"])

    assert signed_in_user(client, django_user_model) is None
    assert "Your Wharf account is deactivated" in page.content.decode()


def test_cancelling_at_the_provider_is_a_message_on_the_sign_in_page(client, provider):
    response = client.get(provider.deny(start_sign_in(client)))

    assert response.status_code == 403
    assert "Sign-in was cancelled" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_provider_that_cannot_be_reached_is_a_message_not_an_error_page(
    client, provider, settings
):
    settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = f"http://127.0.0.1:{free_port()}"

    response = client.post(reverse("oidc_begin"))

    assert response.status_code == 502
    assert "Wharf could not talk to SSO: it could not be reached" in response.content.decode()


def test_a_provider_that_drips_its_answer_is_given_up_at_the_timeout(client, provider, settings):
    settings.SOCIAL_AUTH_OIDC_REQUESTS_TIMEOUT = 1.0
    # A byte every 0.2 s: no read ever waits a whole second, only the deadline can end it.
    with DrippingServer(drip_head=True, interval=0.2, give_up=20) as dripping:
        settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = dripping.url
        started = time.monotonic()
        response = client.post(reverse("oidc_begin"))
        took = time.monotonic() - started

    assert response.status_code == 504
    assert "it did not answer in time" in response.content.decode()
    assert took < 5, took


def test_a_return_that_no_sign_in_here_started_is_refused_with_a_message(client, provider):
    response = client.get(reverse("oidc_complete"), {"code": "forged", "state": "forged"})

    assert response.status_code == 400
    assert "This sign-in could not be finished" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_id_token_signed_by_another_key_is_refused(
    client, provider, request, settings, tmp_path, django_user_model
):
    other = OidcProvider(tmp_path)  # its own RS256 key
    other.start()
    try:
        settings.SOCIAL_AUTH_OIDC_JWKS_URI = f"{other.url}/jwks"
        sub = unique_sub(request)
        provider.add_user(sub, preferred_username="liam")

        response = sign_in_with_sso(client, provider, sub)
    finally:
        other.stop()

    assert response.status_code == 502
    assert "answer could not be verified" in response.content.decode()
    assert not django_user_model.objects.filter(username="liam").exists()


def test_the_sso_button_needs_the_pages_csrf_token(provider):
    response = Client(enforce_csrf_checks=True).post(reverse("oidc_begin"))

    assert response.status_code == 403


def test_without_an_issuer_there_is_no_button_and_the_sso_addresses_say_so(client):
    assert "Sign in with SSO" not in client.get(reverse("login")).content.decode()

    begin = client.post(reverse("oidc_begin"))
    complete = client.get(reverse("oidc_complete"))

    assert begin.status_code == complete.status_code == 404
    assert "Single sign-on is not set up" in begin.content.decode()


def test_a_group_mapped_on_the_roles_screen_gives_its_role_next_request_and_leaves_with_it(
    client, provider, request
):
    from config import roles
    from config.models import GroupRole

    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="erin", groups=["platform-admins"])
    sign_in_with_sso(client, provider, sub)
    admin_page = reverse("registries:registry_add")
    assert client.get(admin_page).status_code == 403

    GroupRole.objects.create(group=Group.objects.get(name="platform-admins"), role=roles.ADMIN)
    granted = client.get(admin_page).status_code

    provider.add_user(sub, preferred_username="erin", groups=[])
    again = Client()
    sign_in_with_sso(again, provider, sub)
    assert granted == 200
    assert again.get(admin_page).status_code == 403
