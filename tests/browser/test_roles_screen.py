"""The Roles screen in a real browser: an admin maps a group to operator with push limited
to one registry and grants a user a role; the group's member then sees only what an
operator may use."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from config.models import GroupRole
from tests.factories import RegistryFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, username: str, password: str, lands_on: str):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}{lands_on}")


def test_an_admin_maps_a_group_and_its_member_pushes_only_where_allowed(
    signed_in, live_server, screenshot, browser, django_user_model
):
    page = signed_in
    RegistryFactory(name="team-charts", push_helm=True)
    RegistryFactory(name="shared-charts", push_helm=True)
    dee = django_user_model.objects.create_user("dee", password="dee-password-1")
    django_user_model.objects.create_user("vic", password="vic-password-1")

    page.get_by_role("button", name="Global Configurations").click()
    page.get_by_role("link", name="Roles").click()
    expect(page.get_by_role("heading", name="Roles", exact=True)).to_be_visible()
    page.get_by_role("link", name="Map a group").click()
    page.get_by_label("Group").fill("deployers")
    page.get_by_label("Role").select_option("operator")
    page.get_by_role("group", name="Push registries").get_by_label("team-charts").check()
    page.get_by_role("button", name="Save").click()
    # Ticked registries without "Limit push" is refused with the reason, nothing saved.
    expect(page.locator("#field-push_limited")).to_contain_text("Tick this")
    assert not GroupRole.objects.exists()
    screenshot("group-mapping-refused")
    page.get_by_label("Limit push to chosen registries").check()
    page.get_by_role("button", name="Save").click()

    row = page.locator("#group-role-table tr[data-group='deployers']")
    expect(row).to_contain_text("Operator")
    expect(row.locator(".push-limit")).to_have_text("Only team-charts")

    page.get_by_role("link", name="Grant a role to a user").click()
    page.get_by_label("User").select_option(label="vic")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#user-role-table tr[data-user='vic']")).to_contain_text("Viewer")
    screenshot("roles-screen")

    # Sign-in through OIDC or LDAP would have put dee into the group; here, by hand.
    Group.objects.get(name="deployers").user_set.add(dee)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    other = context.new_page()
    sign_in(other, live_server, "dee", "dee-password-1", "/charts/")
    other.get_by_role("button", name="Global Configurations").click()
    menu = other.locator(".dropdown-menu")
    expect(menu.get_by_role("link", name="Chart sources")).to_be_visible()
    expect(menu.get_by_role("link", name="Roles")).to_have_count(0)
    menu.get_by_role("link", name="Container/OCI Registry").click()
    team = other.locator("tr[data-registry='team-charts']")
    expect(team.get_by_role("link", name="Push chart")).to_be_visible()
    expect(
        other.locator("tr[data-registry='shared-charts']").get_by_role("link", name="Push chart")
    ).to_have_count(0)
    expect(other.get_by_role("link", name="Edit")).to_have_count(0)
    team.get_by_role("link", name="Push chart").click()
    expect(other.get_by_role("heading", name="Push a chart to team-charts")).to_be_visible()
    context.close()


def test_a_user_without_a_role_sees_whom_to_ask(page, live_server, settings, django_user_model):
    settings.WHARF_REQUIRE_ROLE = True
    settings.WHARF_ROLE_CONTACT = "the platform team (#platform)"
    django_user_model.objects.create_user("newcomer", password="newcomer-password-1")
    sign_in(page, live_server, "newcomer", "newcomer-password-1", "/")
    expect(page.locator("#no-role")).to_contain_text("Ask the platform team (#platform)")
    expect(page.get_by_role("link", name="Chart Store")).to_have_count(0)
    page.goto(f"{live_server.url}/charts/")
    expect(page.locator("#no-role")).to_be_visible()
