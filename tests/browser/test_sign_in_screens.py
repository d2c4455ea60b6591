"""Single sign-on in a real browser: the button, the provider's own page (oidc-provider-mock),
and back in Wharf signed in with the groups of the claim; a sign-in cancelled at the
provider is a message on Wharf's sign-in page."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def at_provider(provider) -> re.Pattern:
    return re.compile(re.escape(f"{provider.url}/oauth2/authorize?"))


def test_signing_in_with_sso_lands_in_the_chart_store_with_the_groups_of_the_claim(
    page, live_server, wharf_oidc, settings, screenshot, django_user_model
):
    settings.WHARF_OIDC_BUTTON_LABEL = "Sign in with Acme ID"
    wharf_oidc.add_user("nora@idp.test", preferred_username="nora", groups=["platform", "sre"])

    page.goto(f"{live_server.url}/charts/")  # not signed in: sent to sign in, then back
    expect(page.get_by_role("button", name="Sign in with Acme ID")).to_be_visible()
    screenshot("sign-in-page")
    page.get_by_role("button", name="Sign in with Acme ID").click()

    # The provider's page links a stylesheet from the internet, which never loads here.
    page.wait_for_url(at_provider(wharf_oidc), wait_until="commit")
    page.locator("input[name=sub]").fill("nora@idp.test")
    screenshot("provider-form")
    page.get_by_role("button", name="Authorize").click()

    page.wait_for_url(f"{live_server.url}/charts/")
    expect(page.locator(".navbar-text")).to_have_text("nora")
    screenshot("signed-in")
    user = django_user_model.objects.get(username="nora")
    assert set(user.groups.values_list("name", flat=True)) == {"platform", "sre"}


def test_a_sign_in_cancelled_at_the_provider_is_explained_on_the_sign_in_page(
    page, live_server, wharf_oidc, screenshot
):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign in with SSO").click()
    # The provider's page links a stylesheet from the internet, which never loads here.
    page.wait_for_url(at_provider(wharf_oidc), wait_until="commit")

    page.get_by_role("button", name="Deny").click()

    expect(page.locator("#sign-in-problem")).to_contain_text("Sign-in was cancelled at SSO")
    expect(page.get_by_label("Username")).to_be_visible()  # local accounts still offered
    screenshot("cancelled")


def test_signing_out_after_sso_ends_the_providers_session_too_and_comes_back(
    page, live_server, wharf_oidc, settings, screenshot
):
    settings.WHARF_OIDC_SIGN_OUT_AT_PROVIDER = True
    wharf_oidc.add_user("otto@idp.test", preferred_username="otto")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign in with SSO").click()
    page.wait_for_url(at_provider(wharf_oidc), wait_until="commit")
    page.locator("input[name=sub]").fill("otto@idp.test")
    page.get_by_role("button", name="Authorize").click()
    expect(page.locator(".navbar-text")).to_have_text("otto")

    page.get_by_role("button", name="Sign out").click()

    # The provider's end-session page (it, too, links a stylesheet that never loads here).
    page.wait_for_url(
        re.compile(re.escape(f"{wharf_oidc.url}/oauth2/end_session?")), wait_until="commit"
    )
    screenshot("provider-end-session")
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("button", name="Sign in with SSO")).to_be_visible()
    page.goto(f"{live_server.url}/charts/")  # signed out of Wharf: sent to sign in
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    screenshot("signed-out")
