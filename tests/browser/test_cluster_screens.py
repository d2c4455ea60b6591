"""Clusters, environments and a registry's credential access in a real browser,
against an emulated Kubernetes API server."""

import base64
import contextlib
import json
import time

import pytest
from playwright.sync_api import expect

from clusters.models import Cluster, PullSecretTarget
from clusters.pullsecrets import reconcile_cluster
from tests.clusters.conftest import emulator_loop, start_fake_cluster  # noqa: F401 (fixtures)
from tests.clusters.factories import ClusterFactory, EnvironmentFactory, inject
from tests.factories import RegistryFactory

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_add_cluster_and_environment_then_manage_access_and_watch_the_status(
    signed_in,
    live_server,
    start_fake_cluster,  # noqa: F811 (the fixture imported above)
    screenshot,
):
    page = signed_in
    fake = start_fake_cluster(namespaces=["web"])
    registry = RegistryFactory(name="acme", url="registry.acme.test")

    # A cluster: test the connection, then save.
    page.get_by_role("button", name="Global Configurations").click()
    page.get_by_role("link", name="Clusters", exact=True).click()
    screenshot("empty-cluster-list")
    page.get_by_role("link", name="Add Cluster").first.click()
    page.get_by_label("Name", exact=True).fill("prod")
    page.get_by_label("API server URL").fill(fake.url)
    page.get_by_label("Bearer token").fill(fake.token)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#connection-result")).to_contain_text("Connection OK.")
    expect(page.locator("#connection-result")).to_contain_text("v1.26.4+k3s1")
    screenshot("cluster-connection-tested")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-cluster=prod]")).to_be_visible()
    screenshot("cluster-list")

    # An environment under it.
    page.get_by_role("link", name="prod", exact=True).click()
    page.get_by_role("link", name="Add environment").click()
    page.get_by_label("Name", exact=True).fill("prod-web")
    page.get_by_label("Namespace").fill("web")
    screenshot("environment-form")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-environment=prod-web]")).to_contain_text("prod")

    # Manage the registry's credential access: auto-inject into all clusters.
    page.goto(f"{live_server.url}/global/registries/")
    row = page.locator("tr[data-registry=acme]")
    expect(row).to_contain_text("Not injected into any cluster")
    row.get_by_role("link", name="Manage").click()
    page.get_by_label("Auto-inject credentials to clusters").check()
    page.get_by_label("All clusters").check()
    page.get_by_label("Use registry credentials").check()
    screenshot("manage-form")
    page.get_by_role("button", name="Save").click()
    # Tests run Celery eagerly: the reconcile ran when the rule was saved.
    status = page.locator("#target-status")
    expect(status).to_contain_text("In sync")
    expect(status).to_contain_text("wharf-acme")
    screenshot("manage-status-in-sync")
    assert fake.secret("web", "wharf-acme") is not None

    # Live: the page polls while a target is pending and shows the result by itself.
    fake.delete_secret("web", "wharf-acme")
    PullSecretTarget.objects.update(status=PullSecretTarget.Status.PENDING)
    page.reload()
    expect(status).to_contain_text("Pending")
    screenshot("manage-status-pending")
    reconcile_cluster(Cluster.objects.get(name="prod").pk)
    expect(status).to_contain_text("In sync", timeout=10_000)
    assert fake.secret("web", "wharf-acme") is not None

    page.goto(f"{live_server.url}/global/registries/")
    expect(page.locator("tr[data-registry=acme]")).to_contain_text(
        "Registry credential access is auto injected to all clusters"
    )
    screenshot("registry-list-summary")

    # The cluster page shows the same targets.
    page.goto(f"{live_server.url}/global/clusters/")
    page.get_by_role("link", name="prod", exact=True).click()
    expect(page.locator("#pull-secrets")).to_contain_text("acme")
    expect(page.locator("#pull-secrets")).to_contain_text("In sync")
    screenshot("cluster-page-status")
    assert registry.pk


def test_a_rejected_token_is_refused_on_save_and_the_list_shows_each_clusters_health(
    signed_in,
    live_server,
    start_fake_cluster,  # noqa: F811 (the fixture imported above)
    screenshot,
):
    page = signed_in
    fake = start_fake_cluster(namespaces=["web"])
    page.goto(f"{live_server.url}/global/clusters/add/")
    page.get_by_label("Name", exact=True).fill("prod")
    page.get_by_label("API server URL").fill(fake.url)
    page.get_by_label("Bearer token").fill("not-the-token")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(page.get_by_role("alert")).to_contain_text("401 Unauthorized")
    expect(page.get_by_label("Save without checking the connection")).to_be_visible()
    screenshot("cluster-token-rejected")
    assert not Cluster.objects.exists()

    page.get_by_label("Bearer token").fill(fake.token)
    page.get_by_role("button", name="Save").click()
    row = page.locator("tr[data-cluster=prod]")
    expect(row.locator(".cluster-health")).to_contain_text("Reachable")

    # Its token is rotated: the next Test connection of the saved cluster records it.
    fake.token = "rotated-token"
    page.get_by_role("link", name="prod", exact=True).click()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#connection-result")).to_contain_text("401 Unauthorized")
    page.goto(f"{live_server.url}/global/clusters/")
    expect(row.locator(".cluster-health")).to_contain_text("Failing")
    expect(row.locator(".cluster-health")).to_contain_text("rejected the bearer token")
    screenshot("cluster-list-health")


def open_a_selector_rule(page, live_server, fake):
    """Cluster "prod" on ``fake`` (its namespaces listed and stored: what the preview reads)
    and registry "acme"'s Manage form set to a label selector on all clusters: the
    preview of "prod" and the selector field."""
    cluster = ClusterFactory(name="prod", api_url=fake.url, token=fake.token)
    reconcile_cluster(cluster.pk)
    registry = RegistryFactory(name="acme", url="registry.acme.test")
    page.goto(f"{live_server.url}/global/registries/{registry.pk}/access/")
    page.get_by_label("Auto-inject credentials to clusters").check()
    page.get_by_label("All clusters").check()
    page.get_by_label("Namespaces matching a label selector").check()
    return page.locator("[data-coverage=prod]"), page.get_by_label("Label selector", exact=True)


def test_manage_previews_a_label_selector_as_it_is_typed_then_saves_it(
    signed_in,
    live_server,
    start_fake_cluster,  # noqa: F811 (the fixture imported above)
    screenshot,
):
    page = signed_in
    fake = start_fake_cluster(namespaces=["kube-system"])
    fake.add_namespace("web", labels={"team": "web", "env": "prod"})
    fake.add_namespace("api", labels={"team": "api", "env": "staging"})
    fake.add_namespace("legacy", labels={"team": "web", "legacy": "yes"})
    coverage, selector = open_a_selector_rule(page, live_server, fake)

    selector.fill("team in (web,api)")
    expect(coverage).to_contain_text("3 namespaces")
    selector.fill("team in (web,api),!legacy")
    expect(coverage).to_contain_text("2 namespaces — api, web")
    expect(coverage).to_contain_text("Namespaces as listed")
    screenshot("manage-selector-preview")
    selector.fill("team in (web")
    expect(page.locator("[data-coverage-error]")).to_contain_text("closing")
    screenshot("manage-selector-malformed")
    selector.fill("env=prod")
    expect(coverage).to_contain_text("1 namespace — web")
    page.get_by_label("Every ServiceAccount of the namespace").check()

    page.get_by_role("button", name="Save").click()
    expect(page.locator("#target-status")).to_contain_text("In sync")
    assert {ns for ns, name in fake.secrets() if name == "wharf-acme"} == {"web"}
    expect(page.get_by_label("Label selector", exact=True)).to_have_value("env=prod")
    screenshot("manage-selector-saved")


def test_the_latest_selector_edit_wins_over_a_preview_still_on_its_way(
    signed_in,
    live_server,
    start_fake_cluster,  # noqa: F811 (the fixture imported above)
):
    # A slow preview (held here) must neither hold back the preview of a later edit nor
    # land over it: the later edit aborts it.
    page = signed_in
    fake = start_fake_cluster(namespaces=["kube-system"])
    fake.add_namespace("web", labels={"team": "web"})
    fake.add_namespace("api", labels={"team": "api"})
    coverage, selector = open_a_selector_rule(page, live_server, fake)
    selector.fill("team=api")
    expect(coverage).to_contain_text("1 namespace — api")

    held: list = []

    def hold_the_web_preview(route) -> None:
        if "namespace_selector=team%3Dweb&" in route.request.url:
            held.append(route)
        else:
            route.continue_()

    page.route(lambda url: "/access/coverage/" in url, hold_the_web_preview)
    selector.fill("team=web")
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:  # the route handler runs on the page's events
        page.wait_for_timeout(50)
    assert held, "the preview of team=web was not sent"
    selector.fill("team in (web,api)")
    expect(coverage).to_contain_text("2 namespaces — api, web")
    for route in held:  # the stale answer arrives late: the browser dropped its request
        with contextlib.suppress(Exception):
            route.continue_()
    page.wait_for_load_state("networkidle")
    expect(coverage).to_contain_text("2 namespaces — api, web")


def test_a_new_registry_password_shows_rotating_until_the_previous_one_is_pruned(
    signed_in,
    live_server,
    start_fake_cluster,  # noqa: F811 (the fixture imported above)
    screenshot,
    settings,
):
    settings.WHARF_PULL_SECRET_ROTATION_GRACE = 3600
    page = signed_in
    fake = start_fake_cluster(namespaces=["web"])
    cluster = ClusterFactory(name="prod", api_url=fake.url, token=fake.token)
    EnvironmentFactory(name="prod-web", cluster=cluster, namespace="web")
    registry = RegistryFactory(name="acme", url="registry.acme.test", secret="old-password")
    inject(registry)
    reconcile_cluster(cluster.pk)

    # A new password on the registry screen (Celery runs eagerly: the reconcile follows).
    page.goto(f"{live_server.url}/global/registries/{registry.pk}/")
    page.get_by_label("Password/Token").fill("new-password")
    page.get_by_label("Save without checking").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-registry=acme]")).to_be_visible()

    page.goto(f"{live_server.url}/global/clusters/{cluster.pk}/")
    row = page.locator("#pull-secrets tr[data-target='prod/web/acme']")
    expect(row).to_contain_text("In sync")
    expect(row.locator("[data-badge=rotating]")).to_be_visible()
    expect(row).to_contain_text("Carries the previous credential beside the new one until")
    assert "old-password" not in page.content()
    screenshot("cluster-page-rotating")
    raw = base64.b64decode(fake.secret("web", "wharf-acme")["data"][".dockerconfigjson"])
    auths = json.loads(raw)["auths"]
    assert auths["registry.acme.test"]["password"] == "new-password"
    assert auths["https://registry.acme.test"]["password"] == "old-password"
