"""A delete page's breadcrumb and impact, and the admin's repository list, in a real browser."""

import pytest
from playwright.sync_api import expect

from clusters.models import PullSecretTarget, RegistryAccess
from registries.models import Registry
from tests.clusters.factories import ClusterFactory
from tests.factories import RegistryFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_registry_delete_page_says_what_goes_and_what_stays(signed_in, live_server, screenshot):
    page = signed_in
    registry = RegistryFactory(name="acme", chart_source=True, repositories=["charts"])
    RegistryAccess.objects.create(
        registry=registry, all_clusters=True,
        credentials=RegistryAccess.Credentials.SECRET, secret_name="regcred",
    )  # fmt: skip
    PullSecretTarget.objects.create(
        cluster=ClusterFactory(name="prod"), namespace="web", registry=registry,
        secret_name="regcred",
    )  # fmt: skip

    page.goto(f"{live_server.url}/global/registries/{registry.pk}/delete/")

    crumbs = page.get_by_role("navigation", name="breadcrumb")
    expect(crumbs.get_by_role("link", name="Home")).to_be_visible()
    expect(crumbs.get_by_role("link", name="acme")).to_be_visible()
    expect(page.locator("main")).to_contain_text("1 referenced secret (regcred)")
    expect(page.locator("main")).to_contain_text("it stays in the cluster")
    expect(page.locator("main")).not_to_contain_text("Wharf removes")
    screenshot("registry-delete-impact")
    crumbs.get_by_role("link", name="acme").click()
    expect(page.get_by_role("heading", name="Edit registry acme")).to_be_visible()


def test_the_admin_edits_the_repository_list_one_per_line(signed_in, live_server, screenshot):
    page = signed_in
    registry = RegistryFactory(
        name="acme", registry_type="public", username="", secret="", auth_type="",
        chart_source=True, repositories=["charts/stable", "team/apps"],
    )  # fmt: skip

    page.goto(f"{live_server.url}/admin/registries/registry/{registry.pk}/change/")
    field = page.get_by_role("textbox", name="List of repositories")
    expect(field).to_have_value("charts/stable\nteam/apps")
    screenshot("admin-repository-list")
    field.fill("charts/stable\nBad Repo")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist")).to_contain_text("Not a repository path: Bad Repo")
    field = page.get_by_role("textbox", name="List of repositories")
    field.fill("charts/stable\nteam/apps\nteam/more")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    registry.refresh_from_db()
    assert registry.repositories == ["charts/stable", "team/apps", "team/more"]
    assert Registry.objects.count() == 1
