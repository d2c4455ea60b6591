"""A registry's rate-limit budget in a real browser: the registry list, the registry page,
and the source page of a sync held back at the reserve."""

import pytest
from playwright.sync_api import expect

from charts.models import SyncRun
from tests.charts.helpers import push_versions, source_of, sync, unique
from tests.charts.test_rate_limit_budgets import registry_through
from tests.servers.ratelimit import RateLimitingFront

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_registry_at_its_reserve_shows_its_budget_and_the_waiting_sync(
    signed_in, live_server, chart_registry, screenshot, settings, broker
):
    broker.eager = False  # the one sync below, in this thread, and nothing else meanwhile
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    settings.WHARF_RATE_LIMIT_RESERVE_PERCENT = 10
    page = signed_in
    repository = unique("charts/shown")
    push_versions(chart_registry, repository, "shown", [f"1.{i}.0" for i in range(8)])
    with RateLimitingFront(chart_registry.host, limit=10, style="ietf", reset=600) as front:
        registry = registry_through(front, [repository])
        run = sync(source_of(registry, repository))
    assert run.status == SyncRun.Status.QUEUED

    page.goto(f"{live_server.url}/global/registries/")
    row = page.locator(f'tr[data-registry="{registry.name}"]')
    expect(row.locator(".rate-limit")).to_contain_text("1 of 10 requests left")
    expect(row.locator(".rate-limit-wait")).to_contain_text("Syncs wait until")
    expect(row).to_contain_text("(rate limit)")
    screenshot("registry-list")

    row.get_by_role("link", name=registry.name).click()
    section = page.locator("#rate-limit")
    expect(section).to_contain_text("1 of 10 requests left")
    expect(section.locator(".rate-limit-reason")).to_contain_text("10% (1) are kept in reserve")
    screenshot("registry-page")

    page.goto(f"{live_server.url}/global/chart-sources/{run.source_id}/")
    waiting = page.locator("#run-table tr.run-waiting")
    expect(waiting).to_contain_text("for the registry's rate limit")
    expect(waiting).to_contain_text("when its window resets")
    screenshot("source-page")
