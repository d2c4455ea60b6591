"""What a sync and an archive read found, in a real browser: the tags a source skipped,
and a version whose archive disagrees with its config (chart page and store card)."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from charts import files
from charts.models import Chart, ChartSource
from tests.charts.helpers import oci_registry, pusher_for, source_of, sync, unique
from tests.charts.test_archive_mismatch import push_mismatched

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/work/notes/shots")


def shot(page, name: str) -> None:
    if SHOTS.is_dir():
        page.screenshot(path=str(SHOTS / f"sync-{name}.png"), full_page=True)


def test_skipped_tags_and_an_archive_mismatch_are_shown(
    signed_in, live_server, chart_registry, screenshot
):
    page = signed_in
    repo = unique("charts/web")
    push_mismatched(chart_registry, repo)
    pusher = pusher_for(chart_registry)
    pusher.push_image(repo, "latest")
    pusher.close()
    source: ChartSource = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    files.read_pending_files()
    chart = Chart.objects.get(source=source)

    page.goto(f"{live_server.url}/global/chart-sources/{source.pk}/")
    skipped = page.locator("#run-table tr.run-skipped").first
    expect(skipped).to_contain_text("1 tag skipped: not Helm charts")
    skipped.locator("summary").click()
    expect(skipped.locator("code")).to_have_text(["latest"])
    expect(page.locator("#run-table")).to_contain_text("says web 0.3.0")
    screenshot("source-runs-skipped")
    shot(page, "source-runs-skipped")

    page.goto(f"{live_server.url}/charts/{chart.pk}/")
    expect(page.locator(".content-warning")).to_contain_text(
        "the chart archive's own Chart.yaml says web 0.3.0"
    )
    screenshot("chart-page-warning")
    shot(page, "chart-page-warning")

    page.goto(f"{live_server.url}/charts/?q=web")
    expect(page.locator(".chart-card[data-chart=web] .content-warning")).to_be_visible()
    screenshot("store-card-warning")
    shot(page, "store-card-warning")
