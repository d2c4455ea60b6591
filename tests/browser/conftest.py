"""Debian's chromium driven by Playwright, against pytest-django's live server."""

import os
from pathlib import Path

import pytest

from tests.servers.base import require_tool

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    chromium = require_tool("chromium")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM
    # calls (users, assertions) are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


# Every page reports what its Content-Security-Policy blocked, as Chromium's console does.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.target && e.target.outerHTML ? ` on ${e.target.outerHTML.slice(0, 160)}` : "";
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` in ${e.documentURI}${where}`);
});
"""


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []

    def on_console(message):
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            violations.append(text)

    page.on("console", on_console)
    yield page
    context.close()
    # A page that needs an inline script or style, or a foreign resource, is broken in
    # production: Wharf serves a strict policy on every response.
    assert violations == [], "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.fixture(autouse=True)
def _tasks_run_as_sent(broker):
    """A browser test is a smoke test of a screen: background work runs as it is sent (in
    the live server's thread), so a page shows it finished as it would shortly after."""
    broker.eager = True


@pytest.fixture
def screenshot(page, request):
    """``screenshot("step")`` saves test-artifacts/<test>/<n>-step.png."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(step: str) -> Path:
        path = folder / f"{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def signed_in(page, live_server, superuser):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("root-password-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/global/registries/")
    return page


# The chart fixtures (nginx Helm repository, a registry for charts) for the chart screens.
from tests.charts.conftest import (  # noqa: E402, F401
    _helm_repo_server,
    chart_registry,
    helm_repo,
    private_chart_registry,
)

# The signing keys (gpg-made OpenPGP keys, cosign key pairs) for the trust screens.
from tests.trust.conftest import cosign_key, release_signer  # noqa: E402, F401
