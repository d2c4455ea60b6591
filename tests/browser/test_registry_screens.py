"""The Container/OCI Registry screens in a real browser, against a real registry."""

import re

import pytest
from playwright.sync_api import expect

from registries.models import Registry

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]

# What htmx marks while a request, swap or settle is under way (a selector, not a script:
# the Content-Security-Policy allows no eval, which a string to wait_for_function needs).
HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling"


def choose(page, locator, value=None):
    """Tick a radio/checkbox or pick an option that re-renders the form, and wait for it."""
    with page.expect_response(lambda r: r.request.method == "POST"):
        locator.select_option(value) if value is not None else locator.check()
    expect(page.locator(HTMX_BUSY)).to_have_count(0)


def test_add_test_save_edit_make_default_and_delete(
    signed_in, live_server, tls_registry, public_registry, ca, screenshot
):
    page = signed_in
    screenshot("empty-list")

    # Add a second registry first (public), so that there is something to delete later.
    page.get_by_role("link", name="Add Registry").first.click()
    screenshot("add-form")
    choose(page, page.get_by_label("Registry provider"), "other")
    choose(page, page.get_by_label("Public Registry"))
    expect(page.get_by_text("A public registry needs no credentials")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("public-mirror")
    page.get_by_label("Registry URL").fill(public_registry.host)
    choose(page, page.get_by_label("Allow insecure connection"))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-registry=public-mirror]")).to_contain_text("Default")

    # Add the private TLS registry, trusted through its CA certificate.
    page.get_by_role("link", name="Add Registry").first.click()
    choose(page, page.get_by_label("Registry provider"), "other")
    page.get_by_label("Name", exact=True).fill("team-registry")
    page.get_by_label("Registry URL").fill("https://" + tls_registry.host)
    page.get_by_label("Username", exact=True).fill(tls_registry.username)
    page.get_by_label("Password/Token").fill(tls_registry.password)
    choose(page, page.get_by_label("Secure with CA certificate"))
    page.get_by_label("CA certificate (PEM)").fill(ca.cert_pem)
    page.get_by_label("Push helm packages").check()

    page.get_by_role("button", name="Save").click()
    expect(page.locator("#field-url .errorlist")).to_contain_text("Drop the scheme")
    screenshot("url-with-scheme-rejected")
    assert not Registry.objects.filter(name="team-registry").exists()

    page.get_by_label("Registry URL").fill(tls_registry.host)
    page.get_by_label("Password/Token").fill(tls_registry.password)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".connection-result")).to_contain_text("Connection OK")
    screenshot("test-connection-ok")

    page.get_by_role("button", name="Save").click()
    row = page.locator("tr[data-registry=team-registry]")
    expect(row).to_contain_text("Private")
    expect(row).to_contain_text("Push helm")
    screenshot("saved")
    assert tls_registry.password not in page.content()

    # Edit: stop pushing images; the stored password stays (blank means keep).
    row.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    expect(page.get_by_label("Password/Token")).to_have_value("")
    page.get_by_label("Push container images").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(row).not_to_contain_text("Push images")
    saved = Registry.objects.get(name="team-registry")
    assert saved.secret == tls_registry.password and not saved.push_images

    # Make it the default: the badge moves.
    row.get_by_role("button", name="Make default").click()
    expect(row).to_contain_text("Default")
    expect(page.locator("tr[data-registry=public-mirror]")).not_to_contain_text("Default")
    screenshot("new-default")

    # Delete the other one, after its confirmation page.
    page.locator("tr[data-registry=public-mirror]").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading")).to_contain_text("Delete registry public-mirror?")
    screenshot("delete-confirmation")
    page.get_by_role("button", name=re.compile("Yes, delete")).click()
    expect(page.locator("tr[data-registry=public-mirror]")).to_have_count(0)
    screenshot("after-delete")
    assert list(Registry.objects.values_list("name", flat=True)) == ["team-registry"]


def test_wrong_password_is_refused_on_save_and_nothing_is_saved(
    signed_in, private_registry, screenshot
):
    page = signed_in
    page.get_by_role("link", name="Add Registry").first.click()
    choose(page, page.get_by_label("Registry provider"), "other")
    page.get_by_label("Name", exact=True).fill("wrong-password")
    page.get_by_label("Registry URL").fill(private_registry.host)
    choose(page, page.get_by_label("Allow insecure connection"))
    page.get_by_label("Username", exact=True).fill(private_registry.username)
    page.get_by_label("Password/Token").fill("not-the-password")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    screenshot("wrong-password")
    assert not Registry.objects.exists()


def test_provider_change_swaps_the_credential_fields(signed_in, screenshot):
    page = signed_in
    page.get_by_role("link", name="Add Registry").first.click()
    expect(page.get_by_label("Registry provider")).to_have_value("ecr")  # the first provider
    expect(page.get_by_label("EC2 IAM Role")).to_be_visible()
    choose(page, page.get_by_label("User Auth"))
    expect(page.get_by_label("Access key ID")).to_be_visible()
    expect(page.get_by_label("Secret access key")).to_be_visible()
    choose(page, page.get_by_label("Registry provider"), "docker-hub")
    expect(page.get_by_label("Registry URL")).to_have_value("docker.io")
    choose(page, page.get_by_label("Registry provider"), "gcp-ar")
    expect(page.get_by_label("Registry URL")).to_have_attribute(
        "placeholder", re.compile("docker.pkg.dev")
    )
    expect(page.get_by_label("Service Account JSON File")).to_be_visible()
    expect(page.get_by_label("Access key ID")).to_have_count(0)
    screenshot("gcp-fields")
