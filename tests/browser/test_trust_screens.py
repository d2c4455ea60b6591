"""Signing keys and the store's "verified only" filter in a real browser (issue 17)."""

import pytest
from playwright.sync_api import expect

from charts.models import Chart, ChartSource, HelmRepository
from trust.models import SigningKey

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_an_openpgp_and_a_cosign_key_and_a_bad_key_is_refused(
    signed_in, live_server, screenshot, release_signer, cosign_key
):
    page = signed_in
    page.get_by_role("button", name="Global Configurations").click()
    page.get_by_role("link", name="Signing keys").click()
    expect(page.locator(".empty-state")).to_contain_text("No signing key yet.")
    page.locator(".empty-state").get_by_role("link", name="Add signing key").click()

    # A key gpg cannot read: the model's message, and nothing saved.
    page.get_by_label("Name").fill("release")
    page.get_by_role("textbox", name="Public key").fill(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbroken\n"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#field-public_key")).to_contain_text("could not read an OpenPGP")
    screenshot("bad-key")
    assert not SigningKey.objects.exists()

    page.get_by_role("textbox", name="Public key").fill(release_signer.public_armored)
    page.get_by_role("button", name="Save").click()
    row = page.locator('#signing-key-table tr[data-key="release"]')
    expect(row).to_contain_text(release_signer.key_id)
    expect(row).to_contain_text("release@example.com")

    page.get_by_role("link", name="Add signing key").click()
    page.get_by_label("Name").fill("ci")
    page.get_by_label("PEM public key (cosign)").check()
    page.get_by_role("textbox", name="Public key").fill(cosign_key.public_pem)
    page.get_by_role("button", name="Save").click()
    cosign_row = page.locator('#signing-key-table tr[data-key="ci"]')
    expect(cosign_row).to_contain_text(SigningKey.objects.get(name="ci").short_id)
    screenshot("keys")

    cosign_row.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator('#signing-key-table tr[data-key="ci"]')).to_have_count(0)
    expect(page.locator('#signing-key-table tr[data-key="release"]')).to_have_count(1)


def test_the_store_filter_verified_only_keeps_the_verified_charts(
    signed_in, live_server, screenshot
):
    repository = HelmRepository.objects.create(name="mirror", url="https://charts.example.com")
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    for name, trust in (
        ("trusted", "verified"),
        ("unknown", "signed-unverified"),
        ("plain", "unsigned"),
    ):
        Chart.objects.create(source=source, name=name, latest_version="1.0.0", latest_trust=trust)
    page = signed_in
    page.goto(f"{live_server.url}/charts/")
    expect(page.locator(".chart-card")).to_have_count(3)
    expect(page.locator('.chart-card[data-chart="trusted"] [data-status="verified"]')).to_have_text(
        "Verified"
    )

    with page.expect_response(lambda r: "verified=1" in r.url):
        page.get_by_label("Verified only").check()
    expect(page.locator(".chart-card")).to_have_count(1)
    expect(page.locator(".chart-card")).to_have_attribute("data-chart", "trusted")
    assert "verified=1" in page.url  # the filter is in the address, to share or reload
    screenshot("verified-only")

    page.reload()
    expect(page.get_by_label("Verified only")).to_be_checked()
    expect(page.locator(".chart-card")).to_have_count(1)
