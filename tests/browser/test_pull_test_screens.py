"""“Test pull” on a cluster's status table in a real browser, against an emulated cluster
whose Pods a harness kubelet plays (tests/clusters/kubelet.py)."""

import pytest
from playwright.sync_api import expect

from clusters import pulltest
from clusters.pullsecrets import reconcile_cluster
from tests.clusters.conftest import (  # noqa: F401 (fixtures)
    add_cluster,
    emulator_loop,
    start_fake_cluster,
)
from tests.clusters.factories import inject
from tests.clusters.kubelet import FakeClock, Kubelet, pull_failed, running, scheduled
from tests.factories import RegistryFactory

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]

IMAGE = "registry.acme.test:5000/team/app:1.0"


@pytest.fixture
def fake_clock(monkeypatch, settings):
    clock = FakeClock()
    monkeypatch.setattr(pulltest, "clock", clock)
    monkeypatch.setattr(pulltest, "sleep", clock.sleep)
    settings.WHARF_PULL_TEST_TIMEOUT = 10
    return clock


def test_test_pull_on_the_status_table_shows_a_refused_pull_then_a_good_one(
    signed_in,
    live_server,
    add_cluster,  # noqa: F811 (the fixture imported above)
    fake_clock,
    screenshot,
):
    page = signed_in
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    inject(RegistryFactory(name="acme", url="registry.acme.test:5000/team"))
    reconcile_cluster(cluster.pk)
    fake.kubelet = Kubelet([scheduled(), pull_failed("ErrImagePull")])

    page.goto(f"{live_server.url}/global/clusters/{cluster.pk}/")
    row = page.locator("tr[data-target='prod/team-a/acme']")
    expect(page.locator("#pull-test-note")).to_contain_text(
        "a node's own credentials (a kubelet credential provider"
    )

    # An image of another registry is refused, saying why; nothing is tested.
    row.get_by_label("Image to pull in team-a").fill("ghcr.io/team/app:1.0")
    row.get_by_role("button", name="Test pull").click()
    expect(page.locator(".alert")).to_contain_text(
        "ghcr.io/team/app:1.0 is on ghcr.io, not on acme's host registry.acme.test:5000"
    )
    screenshot("image-of-another-registry-refused")
    assert [c for c in fake.api_calls() if "/pods" in c] == []

    # The registry refuses the secret's credentials: not pulled, with its answer.
    row.get_by_label("Image to pull in team-a").fill(IMAGE)
    row.get_by_role("button", name="Test pull").click()
    # Background work runs as it is sent in browser tests: the result is there on return.
    expect(row.locator("[data-status=not-pulled]")).to_have_text("Not pulled")
    expect(row).to_contain_text("ErrImagePull")
    expect(row).to_contain_text("401 Unauthorized")
    screenshot("pull-refused")

    # Fixed: the remembered image pulls.
    fake.kubelet = Kubelet([scheduled(), running()])
    expect(row.get_by_label("Image to pull in team-a")).to_have_value(IMAGE)
    row.get_by_role("button", name="Test pull").click()
    expect(row.locator("[data-status=pulled]")).to_have_text("Pulled")
    expect(row).to_contain_text("The image was pulled; its container started.")
    screenshot("pulled")

    # Every target of the cluster at once.
    page.get_by_role("button", name="Test all pulls").click()
    expect(page.locator(".alert")).to_contain_text("Testing pulls in every namespace of prod")
    expect(row.locator("[data-status=pulled]")).to_have_text("Pulled")
    assert fake.kubelet.pods(fake) == {}  # every test Pod deleted
