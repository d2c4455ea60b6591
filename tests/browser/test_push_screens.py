"""Pushing a chart from the browser: the registry list, the push page, the pushes table."""

import pytest
from playwright.sync_api import expect

from charts.models import ChartPush
from charts.push import request_push, run_push
from charts.uploads import prepare_push
from tests.chartkit import make_chart_archive
from tests.charts.helpers import unique
from tests.charts.pushkit import push_registry, tags_of

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_push_a_chart_from_the_registry_list_and_see_its_helm_pull_command(
    signed_in, live_server, private_chart_registry, screenshot, tmp_path
):
    page = signed_in
    registry = push_registry(private_chart_registry, name="charts-push")
    name = unique("shop")
    good = tmp_path / f"{name}-2.1.0.tgz"
    good.write_bytes(make_chart_archive(name, "2.1.0", description="The shop front"))
    bad = tmp_path / "broken.tgz"
    bad.write_bytes(b"this is not a chart archive")

    page.goto(f"{live_server.url}/global/registries/")
    page.locator("tr[data-registry=charts-push]").get_by_role("link", name="Push chart").click()
    expect(page.get_by_role("heading", name="Push a chart to charts-push")).to_be_visible()
    screenshot("push-page")

    # A broken archive: the message sits beside the field, nothing is pushed.
    page.get_by_label("Chart package (.tgz)").set_input_files(str(bad))
    page.get_by_role("button", name="Push chart").click()
    expect(page.locator("#field-archive")).to_contain_text("not a gzip-compressed chart archive")
    assert not ChartPush.objects.exists()
    screenshot("push-refused-archive")

    # A real chart under a prefix: queued, pushed by the worker, listed with helm pull.
    page.get_by_label("Chart package (.tgz)").set_input_files(str(good))
    page.get_by_label("Repository prefix (optional)").fill("shop")
    page.get_by_role("button", name="Push chart").click()
    row = page.locator("#push-table tr.push-succeeded").first
    expect(row).to_contain_text(f"shop/{name}")
    expect(row).to_contain_text("2.1.0")
    expect(row).to_contain_text("Succeeded")
    command = f"helm pull oci://{private_chart_registry.host}/shop/{name} --version 2.1.0"
    expect(page.locator("code.helm-pull").first).to_have_text(command)
    expect(page.locator(".alert-success, .toast, [role=alert]").first).to_contain_text("queued")
    screenshot("push-succeeded")
    assert tags_of(private_chart_registry, f"shop/{name}") == ["2.1.0"]
    assert ChartPush.objects.get().registry == registry


def test_pushes_table_follows_a_queued_push_until_it_finishes(
    signed_in, live_server, chart_registry, screenshot
):
    page = signed_in
    registry = push_registry(chart_registry, name="charts-live")
    name = unique("live")
    upload = prepare_push(make_chart_archive(name, "0.1.0"), b"", "")
    push = request_push(registry, None, upload, overwrite=False, enqueue=False)  # no worker yet

    page.goto(f"{live_server.url}/global/registries/{registry.pk}/push/")
    row = page.locator(f"#push-table tr[data-push='{push.pk}']")
    expect(row).to_contain_text("Queued")
    screenshot("push-queued")

    run_push(push.pk)  # the worker; the table polls every 2 s and shows the outcome

    expect(row).to_contain_text("Succeeded", timeout=10_000)
    expect(page.locator("#pushes")).not_to_have_attribute("hx-trigger", "every 2s")
    screenshot("push-finished-live")
