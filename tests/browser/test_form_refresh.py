"""Choosing another option re-renders only the fields that depend on it, and never takes back
what the user typed while that refresh was on its way (a held refresh, in a real browser)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_registry_screens import HTMX_BUSY, choose

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class HeldRefreshes:
    """Intercepts the form's htmx refreshes (POSTs with _refresh) and holds them until
    released; every other request goes through."""

    def __init__(self, page, url_pattern: str) -> None:
        self.held: list = []
        self.holding = False
        page.route(url_pattern, self._handle)

    def _handle(self, route) -> None:
        request = route.request
        if self.holding and request.method == "POST" and "_refresh" in (request.post_data or ""):
            self.held.append(route)  # answered later, by release()
        else:
            route.continue_()

    def release(self) -> None:
        self.holding = False
        while self.held:
            self.held.pop(0).continue_()


def is_refresh(request) -> bool:
    return request.method == "POST" and "_refresh" in (request.post_data or "")


def test_registry_username_typed_during_a_connection_method_refresh_survives(
    signed_in, live_server, screenshot
):
    page = signed_in
    page.goto(f"{live_server.url}/global/registries/add/")
    choose(page, page.get_by_label("Registry provider"), "other")
    page.get_by_label("Name", exact=True).fill("slow-refresh")
    page.get_by_label("Registry URL").fill("registry.example.com")
    held = HeldRefreshes(page, "**/global/registries/add/")
    held.holding = True

    with page.expect_request(is_refresh):
        page.get_by_label("via Proxy").check()
    # The refresh is on its way (held): the user goes on typing.
    page.get_by_label("Username", exact=True).press_sequentially("typed-while-refreshing")
    page.get_by_label("Registry URL").press("End")
    page.get_by_label("Registry URL").press_sequentially("/team")
    held.release()

    expect(page.get_by_label("Proxy URL")).to_be_visible()
    expect(page.locator(HTMX_BUSY)).to_have_count(0)
    expect(page.get_by_label("Username", exact=True)).to_have_value("typed-while-refreshing")
    expect(page.get_by_label("Registry URL")).to_have_value("registry.example.com/team")
    expect(page.get_by_label("Name", exact=True)).to_have_value("slow-refresh")
    screenshot("registry-typed-during-refresh")


def test_registry_text_typed_in_a_re_rendered_field_during_a_refresh_survives(
    signed_in, live_server
):
    # Docker Hub fills in its URL; a URL typed while the provider refresh was away wins.
    page = signed_in
    page.goto(f"{live_server.url}/global/registries/add/")
    held = HeldRefreshes(page, "**/global/registries/add/")
    held.holding = True

    with page.expect_request(is_refresh):
        page.get_by_label("Registry provider").select_option("docker-hub")
    page.get_by_label("Registry URL").fill("docker.io/myteam")
    held.release()

    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.locator(HTMX_BUSY)).to_have_count(0)
    expect(page.get_by_label("Registry URL")).to_have_value("docker.io/myteam")


def test_registry_refreshes_run_in_order_so_the_last_choice_wins(signed_in, live_server):
    page = signed_in
    page.goto(f"{live_server.url}/global/registries/add/")
    choose(page, page.get_by_label("Registry provider"), "other")
    held = HeldRefreshes(page, "**/global/registries/add/")
    held.holding = True

    with page.expect_request(is_refresh):
        page.get_by_label("via Proxy").check()
    page.get_by_label("via SSH Tunnel").check()  # queued behind the held one
    held.release()

    expect(page.get_by_label("SSH host")).to_be_visible()
    expect(page.locator(HTMX_BUSY)).to_have_count(0)
    expect(page.get_by_label("Proxy URL")).to_have_count(0)
    expect(page.get_by_label("via SSH Tunnel")).to_be_checked()


def test_helm_repository_text_typed_during_an_access_refresh_survives(
    signed_in, live_server, screenshot
):
    page = signed_in
    page.goto(f"{live_server.url}/global/chart-repositories/add/")
    held = HeldRefreshes(page, "**/global/chart-repositories/add/")
    held.holding = True

    with page.expect_request(is_refresh):
        page.get_by_label("Private").check()
    page.get_by_label("Name", exact=True).press_sequentially("typed-meanwhile")
    page.get_by_label("Repository URL").press_sequentially("https://charts.example.com/x")
    held.release()

    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    expect(page.locator(HTMX_BUSY)).to_have_count(0)
    expect(page.get_by_label("Name", exact=True)).to_have_value("typed-meanwhile")
    expect(page.get_by_label("Repository URL")).to_have_value("https://charts.example.com/x")

    # The connection method next: the username typed meanwhile stays.
    held.holding = True
    with page.expect_request(is_refresh):
        page.get_by_label("via Proxy").check()
    page.get_by_label("Username", exact=True).press_sequentially("reader")
    held.release()
    expect(page.get_by_label("Proxy URL")).to_be_visible()
    expect(page.locator(HTMX_BUSY)).to_have_count(0)
    expect(page.get_by_label("Username", exact=True)).to_have_value("reader")
    expect(page.get_by_label("Save without checking the connection")).to_be_visible()
    screenshot("helm-typed-during-refresh")


def test_gcr_offers_only_a_private_registry_and_ecr_starts_with_iam_role(
    signed_in, live_server, screenshot
):
    page = signed_in
    page.goto(f"{live_server.url}/global/registries/add/")
    expect(page.get_by_label("EC2 IAM Role")).to_be_checked()
    expect(page.get_by_label("Private Registry")).to_be_checked()
    screenshot("ecr-new-form")

    choose(page, page.get_by_label("Registry provider"), "quay")
    choose(page, page.get_by_label("Public Registry"))
    choose(page, page.get_by_label("Registry provider"), "gcr")
    expect(page.get_by_label("Public Registry")).to_have_count(0)
    expect(page.get_by_label("Private Registry")).to_be_checked()
    expect(page.get_by_label("Service Account JSON File")).to_be_visible()
    expect(page.get_by_label("Registry URL")).to_have_value("gcr.io")  # not Quay's quay.io
    screenshot("gcr-private-only")
