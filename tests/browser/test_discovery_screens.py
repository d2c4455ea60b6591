"""The "All repositories the registry holds" choice in a real browser, against a real registry."""

import pytest
from playwright.sync_api import expect

from charts.models import ChartSource
from registries.models import Registry
from registries.providers import LISTING_REFUSED
from tests.charts.helpers import push_versions, pusher_for

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]

HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling"


def choose(page, locator, value=None):
    """Tick a radio/checkbox or pick an option that re-renders the form, and wait for it."""
    with page.expect_response(lambda r: r.request.method == "POST"):
        locator.select_option(value) if value is not None else locator.check()
    expect(page.locator(HTMX_BUSY)).to_have_count(0)


@pytest.fixture
def listed_registry(registry_factory):
    server = registry_factory()
    push_versions(server, "charts/redis", "redis", ["1.0.0"])
    pusher = pusher_for(server)
    pusher.push_image("apps/web", "1.0.0")
    pusher.close()
    return server


def test_a_registry_indexed_for_all_its_repositories_lists_them_and_shows_what_it_found(
    signed_in, listed_registry, screenshot
):
    page = signed_in
    page.get_by_role("link", name="Add Registry").first.click()
    choose(page, page.get_by_label("Registry provider"), "other")
    choose(page, page.get_by_label("Public Registry"))
    page.get_by_label("Name", exact=True).fill("everything")
    page.get_by_label("Registry URL").fill(listed_registry.host)
    choose(page, page.get_by_label("Allow insecure connection"))
    choose(page, page.get_by_label("Use as chart repository"))
    expect(page.get_by_role("textbox", name="List of repositories")).to_be_visible()

    choose(page, page.get_by_label("All repositories the registry holds"))
    expect(page.get_by_role("textbox", name="List of repositories")).to_have_count(0)
    expect(page.get_by_label("Path prefixes (optional)")).to_be_visible()
    screenshot("all-repositories-chosen")

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".connection-result")).to_contain_text(
        "Listing the repositories works, through the distribution API (GET /v2/_catalog): "
        "it lists 2 repositories."
    )
    screenshot("test-connection-lists")

    page.get_by_role("button", name="Save").click()
    row = page.locator("tr[data-registry=everything]")
    expect(row).to_contain_text("Chart source (all repositories)")
    # The listing ran as the save sent it: one repository indexed, the image one skipped.
    page.reload()
    expect(row.locator(".discovery-counts")).to_contain_text(
        "2 discovered, 1 indexed (1 new), 1 skipped"
    )
    row.locator(".discovery-skipped summary").click()
    expect(row.locator(".discovery-skipped")).to_contain_text("apps/web")
    expect(row).to_contain_text("charts/redis")
    screenshot("listed")
    registry = Registry.objects.get(name="everything")
    assert registry.repository_scope == Registry.Scope.ALL
    assert list(ChartSource.objects.values_list("repository", flat=True)) == ["charts/redis"]


def test_a_provider_that_does_not_list_says_so_and_keeps_the_list(signed_in, screenshot):
    page = signed_in
    page.get_by_role("link", name="Add Registry").first.click()
    choose(page, page.get_by_label("Registry provider"), "docker-hub")
    choose(page, page.get_by_label("Public Registry"))
    page.get_by_label("Name", exact=True).fill("hub")
    choose(page, page.get_by_label("Use as chart repository"))
    expect(page.locator("#field-repository_scope")).to_contain_text(LISTING_REFUSED)

    choose(page, page.get_by_label("All repositories the registry holds"))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#field-repository_scope .errorlist")).to_contain_text(LISTING_REFUSED)
    screenshot("docker-hub-refused")
    assert not Registry.objects.filter(name="hub").exists()
