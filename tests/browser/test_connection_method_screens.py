"""Connection methods in a real browser: a registry, and a Helm repository, behind a proxy."""

import pytest
from playwright.sync_api import expect

from charts.models import HelmRepository
from registries.models import Registry
from tests.browser.test_registry_screens import choose
from tests.chartkit import helm_index, make_chart_archive

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_registry_reached_through_an_authenticating_proxy(
    signed_in, live_server, tls_registry, auth_proxy, ca, screenshot
):
    page = signed_in
    page.get_by_role("link", name="Add Registry").first.click()
    choose(page, page.get_by_label("Registry provider"), "other")
    page.get_by_label("Name", exact=True).fill("behind-proxy")
    page.get_by_label("Registry URL").fill(tls_registry.host)
    page.get_by_label("Username", exact=True).fill(tls_registry.username)
    page.get_by_label("Password/Token").fill(tls_registry.password)
    choose(page, page.get_by_label("via Proxy"))
    page.get_by_label("Proxy URL").fill(auth_proxy.url)
    page.get_by_label("Proxy username").fill(auth_proxy.username)
    page.get_by_label("Proxy password").fill("not-the-proxy-password")
    choose(page, page.get_by_label("Secure with CA certificate"))
    page.get_by_label("CA certificate (PEM)").fill(ca.cert_pem)

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".connection-result")).to_contain_text("Connection failed.")
    expect(page.locator(".connection-result")).to_contain_text("proxy")
    screenshot("proxy-credentials-refused")

    page.get_by_label("Proxy password").fill(auth_proxy.password)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".connection-result")).to_contain_text("Connection OK.")
    screenshot("proxy-connection-ok")
    assert (
        f"CONNECT {tls_registry.host}" in auth_proxy.log() or tls_registry.host in auth_proxy.log()
    )

    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-registry=behind-proxy]")).to_be_visible()
    registry = Registry.objects.get(name="behind-proxy")
    assert registry.connection_method == Registry.ConnectionMethod.PROXY
    assert registry.proxy_password == auth_proxy.password
    assert auth_proxy.password not in page.content()


def test_a_helm_repository_reached_through_an_authenticating_proxy(
    signed_in, live_server, helm_repo, auth_proxy, screenshot
):
    archive = make_chart_archive("proxied-app", "1.0.0")
    helm_repo.put("charts/proxied-app-1.0.0.tgz", archive)
    helm_repo.write_index(
        helm_index([{"name": "proxied-app", "version": "1.0.0", "archive": archive}])
    )
    page = signed_in
    page.goto(f"{live_server.url}/global/chart-repositories/add/")
    page.get_by_label("Name", exact=True).fill("via-proxy")
    page.get_by_label("Repository URL").fill(helm_repo.url)
    choose(page, page.get_by_label("Allow insecure connection"))
    expect(page.get_by_label("Proxy URL")).to_have_count(0)
    choose(page, page.get_by_label("via Proxy"))
    page.get_by_label("Proxy URL").fill(auth_proxy.url)
    page.get_by_label("Proxy username").fill(auth_proxy.username)
    page.get_by_label("Proxy password").fill("not-the-proxy-password")

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".connection-result")).to_contain_text("Connection failed.")
    expect(page.locator(".connection-result")).to_contain_text(
        "rejected the proxy username and password"
    )
    screenshot("helm-proxy-credentials-refused")

    page.get_by_label("Proxy password").fill(auth_proxy.password)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".connection-result")).to_contain_text("1 charts, 1 versions")
    expect(page.locator(".connection-result")).to_contain_text("Went through the proxy")
    screenshot("helm-proxy-connection-ok")

    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-repository=via-proxy]")).to_be_visible()
    repository = HelmRepository.objects.get(name="via-proxy")
    assert repository.connection_method == HelmRepository.ConnectionMethod.PROXY
    assert repository.proxy_password == auth_proxy.password
    assert f"{helm_repo.url}/index.yaml" in auth_proxy.log()

    page.goto(f"{live_server.url}/global/chart-repositories/{repository.pk}/")
    expect(page.get_by_label("Proxy URL")).to_have_value(auth_proxy.url)
    assert auth_proxy.password not in page.content()
    screenshot("helm-proxy-edit-page")
