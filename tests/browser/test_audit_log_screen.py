"""The audit log in a real browser: names not ids, filters, pages, and a bad filter explained."""

import pytest
from playwright.sync_api import expect

from config.models import AuditEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_filter_and_page_through_the_audit_log(signed_in, live_server, screenshot):
    page = signed_in
    for number in range(55):
        AuditEntry.objects.create(
            action="update", object_type="cluster", object_repr=f"cluster-{number:02d}",
            username="root", changes={"lease_owner": ["", "w1"], "active": [True, False]},
        )  # fmt: skip
    AuditEntry.objects.create(
        action="create", object_type="environment", object_repr="prod-web",
        username="push_chart by os:ci", changes={"cluster": [None, "prod"]},
    )  # fmt: skip

    page.goto(f"{live_server.url}/global/audit/")
    table = page.locator("#audit-table")
    expect(table.locator("tbody tr")).to_have_count(50)
    expect(page.get_by_text("Page 1 of 2 (56 entries)")).to_be_visible()
    expect(table).not_to_contain_text("lease_owner")
    screenshot("audit-log-page-1")

    page.get_by_label("Object type").select_option("environment")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("cluster: — → prod")
    expect(table).to_contain_text("push_chart by os:ci")
    screenshot("audit-log-filtered")

    page.goto(f"{live_server.url}/global/audit/?since=2026-13-40&page=x")
    expect(page.get_by_role("alert")).to_contain_text("“2026-13-40” is not a date")
    expect(page.get_by_role("alert")).to_contain_text("“x” is not a page number")
    screenshot("audit-log-bad-filter")
