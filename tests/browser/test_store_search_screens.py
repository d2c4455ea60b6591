"""The Chart Store's search and page links in a real browser (issue 16)."""

import pytest
from playwright.sync_api import expect

from charts.models import Chart, ChartSource, HelmRepository

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_search_ranks_the_exact_name_first_and_pages_go_forward_and_back(
    signed_in, live_server, screenshot
):
    repository = HelmRepository.objects.create(name="mirror", url="https://charts.example.com")
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    Chart.objects.bulk_create(
        [Chart(source=source, name=f"app-{i:02d}", latest_version="1.0.0",
               description="An application") for i in range(40)]
        + [Chart(source=source, name="redis", latest_version="17.3.0",
                 description="In-memory data store"),
           Chart(source=source, name="redis-cluster", latest_version="9.0.0"),
           Chart(source=source, name="cache", latest_version="1.0.0",
                 description="Works with redis")]
    )  # fmt: skip
    page = signed_in
    page.goto(f"{live_server.url}/charts/")
    expect(page.locator(".store-count")).to_have_text("43 charts")
    expect(page.locator(".chart-card")).to_have_count(24)

    # The next page, and back: no chart twice, none left out.
    page.get_by_role("link", name="Next").click()
    expect(page.locator(".chart-card")).to_have_count(19)
    second = page.locator(".chart-card").evaluate_all("cards => cards.map(c => c.dataset.chart)")
    assert second[0] == "app-24" and second[-1] == "redis-cluster" and len(set(second)) == 19
    expect(page.get_by_role("link", name="Next")).to_have_count(0)
    page.get_by_role("link", name="Previous").click()
    expect(page.locator(".chart-card").first).to_have_attribute("data-chart", "app-00")
    expect(page.get_by_role("link", name="Previous")).to_have_count(0)

    # Typing searches as you go: the exact name first, then names starting with it.
    with page.expect_response(lambda r: "q=redis" in r.url):
        page.get_by_placeholder("Search by name, description or keyword").fill("redis")
    expect(page.locator(".chart-card")).to_have_count(3)
    names = page.locator(".chart-card").evaluate_all("cards => cards.map(c => c.dataset.chart)")
    assert names == ["redis", "redis-cluster", "cache"]
    expect(page.locator(".store-count")).to_have_text("3 charts matching “redis”")
    screenshot("store-search")

    # A damaged page link says so and shows the first page.
    page.goto(f"{live_server.url}/charts/?cursor=damaged")
    expect(page.locator(".cursor-error")).to_contain_text("This page link is damaged")
    expect(page.locator(".chart-card").first).to_have_attribute("data-chart", "app-00")
    screenshot("store-bad-cursor")
