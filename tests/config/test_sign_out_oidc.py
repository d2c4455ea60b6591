"""Signing out after single sign-on: with ``WHARF_OIDC_SIGN_OUT_AT_PROVIDER`` the browser
goes on to the provider's end-session page (its discovery document's
``end_session_endpoint``, OpenID Connect RP-Initiated Logout) and comes back to Wharf's
sign-in page; without it, or for a local account, signing out ends Wharf's session only.
Against a real provider (oidc-provider-mock)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from config import signin
from tests.config.test_sign_in_oidc import sign_in_with_sso, unique_sub
from tests.servers.oidc import CLIENT_ID

pytestmark = [pytest.mark.django_db, pytest.mark.services]


@pytest.fixture
def provider(wharf_oidc):
    return wharf_oidc


@pytest.fixture
def signed_in(client, provider, request):
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username=sub.split("@")[0][:30])
    response = sign_in_with_sso(client, provider, sub)
    assert client.session.get("_auth_user_id"), response
    return client


def test_signing_out_goes_on_to_the_provider_and_comes_back_to_sign_in(
    client, provider, settings, request
):
    settings.WHARF_OIDC_SIGN_OUT_AT_PROVIDER = True
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="olive")
    sign_in_with_sso(client, provider, sub)

    response = client.post(reverse("logout"))

    assert "_auth_user_id" not in client.session  # Wharf's session ended first
    location = urlsplit(response["Location"])
    assert response.status_code == 302
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{provider.url}/oauth2/end_session"
    )
    query = parse_qs(location.query)
    back = "http://testserver" + reverse("login")
    assert query == {"client_id": [CLIENT_ID], "post_logout_redirect_uri": [back]}
    # The provider's own page, and its confirmation, send the browser back to Wharf.
    page = requests.get(response["Location"], timeout=10)
    assert page.status_code == 200 and back in page.text
    confirm = requests.post(
        f"{provider.url}/oauth2/end_session/confirm",
        data={"redirect_uri": back},
        allow_redirects=False,
        timeout=10,
    )
    assert confirm.status_code == 302 and confirm.headers["Location"] == back


def test_pages_of_an_sso_session_let_the_sign_out_form_reach_the_provider(
    client, provider, settings, request
):
    settings.WHARF_OIDC_SIGN_OUT_AT_PROVIDER = True
    sub = unique_sub(request)
    provider.add_user(sub, preferred_username="pia")
    sign_in_with_sso(client, provider, sub)

    policy = client.get(reverse("charts:chart_list"))["Content-Security-Policy"]

    form_action = policy.split("form-action")[1].split(";")[0]
    assert provider.url in form_action


def test_by_default_signing_out_ends_the_wharf_session_only(signed_in):
    policy = signed_in.get(reverse("charts:chart_list"))["Content-Security-Policy"]
    response = signed_in.post(reverse("logout"))

    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in signed_in.session
    assert "form-action 'self';" in policy


def test_a_local_account_signs_out_at_wharf_only(client, provider, settings, django_user_model):
    settings.WHARF_OIDC_SIGN_OUT_AT_PROVIDER = True
    client.force_login(django_user_model.objects.create_user("local", password="pw-local-1"))

    response = client.post(reverse("logout"))

    assert response.status_code == 302 and response["Location"] == reverse("login")


def test_an_end_session_endpoint_on_another_origin_is_not_kept(settings, provider, rf, caplog):
    settings.WHARF_OIDC_SIGN_OUT_AT_PROVIDER = True

    class Backend:
        def oidc_config(self):
            return {"end_session_endpoint": "https://elsewhere.example/logout"}

    request = rf.get("/")
    request.session = {}
    signin.remember_provider_sign_out(request, Backend())

    assert request.session == {}
    assert "not on the issuer's origin" in caplog.text


def test_the_end_session_address_keeps_the_endpoints_own_query(settings):
    settings.SOCIAL_AUTH_OIDC_KEY = "wharf"
    url = signin.provider_sign_out_url(
        "https://id.example/logout?tenant=a", "https://wharf.example/accounts/login/"
    )

    assert parse_qs(urlsplit(url).query) == {
        "tenant": ["a"],
        "client_id": ["wharf"],
        "post_logout_redirect_uri": ["https://wharf.example/accounts/login/"],
    }
