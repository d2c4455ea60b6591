"""The Manage page's namespace and ServiceAccount choices, and its preview of what a rule
covers (from what reconciles recorded: no write, no network)."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clusters.models import ClusterNamespace, RegistryAccess
from tests.clusters.factories import ClusterFactory, EnvironmentFactory, inject
from tests.clusters.test_views import access_data
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

LISTED_AT = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)


@pytest.fixture
def registry():
    return RegistryFactory(name="acme")


@pytest.fixture
def listed_clusters():
    """Two clusters whose last reconcile listed these namespaces (unreachable URLs: a page
    asking them would fail)."""
    clusters = {}
    for name, namespaces in {
        "prod": {"web": {"team": "web"}, "api": {"team": "api"}, "kube-system": {}},
        "stage": {"web": {"team": "web", "legacy": "yes"}, "tools": {}},
    }.items():
        cluster = ClusterFactory(name=name, namespaces_listed_at=LISTED_AT)
        for namespace, labels in namespaces.items():
            ClusterNamespace.objects.create(cluster=cluster, name=namespace, labels=labels)
        clusters[name] = cluster
    return clusters


def coverage_of(html: str) -> dict[str, list[str]]:
    """Cluster name -> the namespaces the preview names for it."""
    found = {}
    for name, body in re.findall(r'data-coverage="([^"]+)">(.*?)</li>', html, re.S):
        found[name] = re.findall(r"<code>([^<]+)</code>", body.split("Not in the cluster")[0])
    return found


def preview(client, registry, **data) -> str:
    url = reverse("clusters:registryaccess_coverage", args=[registry.pk])
    response = client.get(url, access_data(**data))
    assert response.status_code == 200
    return response.content.decode()


def test_preview_of_a_selector_lists_the_matching_namespaces_per_cluster(
    admin_client, registry, listed_clusters
):
    html = preview(
        admin_client,
        registry,
        all_clusters="on",
        namespaces="selector",
        namespace_selector="team,!legacy",
    )

    assert coverage_of(html) == {"prod": ["api", "web"], "stage": []}
    assert "2026-03-04 05:06 UTC" in html


def test_preview_of_all_namespaces_leaves_out_the_listed_ones(
    admin_client, registry, listed_clusters
):
    prod = listed_clusters["prod"]
    html = preview(
        admin_client,
        registry,
        clusters=[prod.pk],
        namespaces="all",
        excluded_namespaces="kube-system",
    )
    assert coverage_of(html) == {"prod": ["api", "web"]}


def test_preview_of_the_environments_flags_a_namespace_missing_from_the_cluster(
    admin_client, registry, listed_clusters
):
    prod = listed_clusters["prod"]
    EnvironmentFactory(cluster=prod, namespace="web")
    EnvironmentFactory(cluster=prod, namespace="gone")

    html = preview(admin_client, registry, clusters=[prod.pk], namespaces="environments")

    assert coverage_of(html) == {"prod": ["gone", "web"]}
    assert "Not in the cluster at the last listing: <code>gone</code>" in html


def test_preview_of_an_exclude_rule_covers_the_clusters_not_ticked(
    admin_client, registry, listed_clusters
):
    html = preview(
        admin_client,
        registry,
        mode="exclude",
        clusters=[listed_clusters["prod"].pk],
        namespaces="all",
    )
    assert coverage_of(html) == {"stage": ["tools", "web"]}


def test_preview_of_a_cluster_never_listed_says_so(admin_client, registry):
    ClusterFactory(name="fresh")
    html = preview(admin_client, registry, all_clusters="on", namespaces="selector",
                   namespace_selector="team")  # fmt: skip
    assert "has not listed this cluster's namespaces yet" in html


def test_preview_of_a_malformed_selector_says_why(admin_client, registry, listed_clusters):
    html = preview(
        admin_client,
        registry,
        all_clusters="on",
        namespaces="selector",
        namespace_selector="team in (web",
    )
    assert "This label selector does not parse" in html and "closing" in html
    assert coverage_of(html) == {}


def test_preview_writes_nothing(admin_client, registry, listed_clusters):
    inject(registry, namespaces="all")
    with CaptureQueriesContext(connection) as queries:
        preview(admin_client, registry, all_clusters="on", namespaces="selector",
                namespace_selector="team")  # fmt: skip
    verbs = {q["sql"].lstrip().split(" ", 1)[0].upper() for q in queries.captured_queries}
    assert verbs <= {"SELECT", "SAVEPOINT", "RELEASE"}, verbs
    assert RegistryAccess.objects.get().namespaces == "all"  # the saved rule is untouched


def test_manage_page_previews_the_saved_rule(admin_client, registry, listed_clusters):
    inject(registry, namespaces="selector", namespace_selector="team=web")

    html = admin_client.get(reverse("clusters:registryaccess_edit", args=[registry.pk]))

    assert coverage_of(html.content.decode()) == {"prod": ["web"], "stage": ["web"]}


def test_manage_saves_a_selector_rule_with_named_service_accounts(admin_client, registry):
    data = access_data(
        all_clusters="on",
        namespaces="selector",
        namespace_selector=" env in (prod,staging) ",
        service_accounts="named",
        service_account_names="builder\nrunner, builder",
    )

    response = admin_client.post(reverse("clusters:registryaccess_edit", args=[registry.pk]), data)

    assert response.status_code == 302
    rule = RegistryAccess.objects.get()
    assert (rule.namespaces, rule.namespace_selector) == ("selector", "env in (prod,staging)")
    assert rule.linked_service_accounts() == ("builder", "runner")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"namespaces": "selector", "namespace_selector": ""}, "Enter a label selector"),
        ({"namespaces": "selector", "namespace_selector": "env in prod"}, "in parentheses"),
        ({"namespaces": "all", "excluded_namespaces": "kube-system Not_A_Name"},
         "“Not_A_Name” is not a namespace name"),
        ({"service_accounts": "named", "service_account_names": "Bad Name!"},
         "is not a ServiceAccount name"),
    ],
)  # fmt: skip
def test_manage_refuses_a_bad_namespace_or_service_account_choice_on_the_page(
    admin_client, registry, overrides, message
):
    data = access_data(all_clusters="on", **overrides)

    response = admin_client.post(reverse("clusters:registryaccess_edit", args=[registry.pk]), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not RegistryAccess.objects.exists()


def test_manage_form_shows_the_system_namespaces_excluded_by_default(admin_client, registry):
    html = admin_client.get(reverse("clusters:registryaccess_edit", args=[registry.pk]))
    assert "kube-system, kube-public, kube-node-lease</textarea>" in html.content.decode()
