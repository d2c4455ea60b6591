"""The profile page's API tokens and the API docs in a real browser (the page fixture fails
on any Content-Security-Policy violation)."""

import pytest
import requests
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def call_api(live_server, token: str) -> int:
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(
            f"{live_server.url}/api/v1/registries/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    return answer.status_code


def test_make_use_and_revoke_an_api_token(signed_in, live_server, screenshot):
    page = signed_in
    page.get_by_role("link", name="root").click()
    expect(page.locator("#role")).to_have_text("admin")

    page.get_by_label("Name").fill("ci-pipeline")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New API token").input_value()
    screenshot("token-shown-once")

    assert token.startswith("wharf_")
    assert call_api(live_server, token) == 200
    page.goto(f"{live_server.url}/account/")
    expect(page.locator("#tokens")).to_contain_text("ci-pipeline")
    expect(page.locator("#new-token")).to_have_count(0)
    assert token not in page.content()

    page.get_by_role("button", name="Revoke “ci-pipeline”").click()
    expect(page.locator("#tokens")).to_contain_text("revoked")
    screenshot("token-revoked")
    assert call_api(live_server, token) == 401


def test_the_api_docs_render_from_local_files(signed_in, live_server, screenshot):
    page = signed_in
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )

    page.goto(f"{live_server.url}/api/v1/docs/")

    expect(page.get_by_text("Wharf API").first).to_be_visible()
    expect(page.locator(".opblock-tag", has_text="registries").first).to_be_visible()
    screenshot("api-docs")
    assert [u for u in outside if not u.startswith("data:")] == []
