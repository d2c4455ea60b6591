"""Delete pages list what each app loses, as the apps that own the data tell it."""

import pytest
from django.urls import reverse

from clusters.models import PullSecretTarget
from config import impact
from registries.models import Registry
from tests.clusters.factories import ClusterFactory
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def test_impact_lists_each_registered_providers_lines_once_in_order(monkeypatch):
    monkeypatch.setattr(impact, "_providers", {})
    first = lambda obj: [f"first on {obj}"]  # noqa: E731
    impact.register(Registry, first)
    impact.register(Registry, lambda obj: ["second", "third"])
    impact.register(Registry, first)

    assert impact.impact_of(Registry(name="acme")) == ["first on acme", "second", "third"]
    assert impact.impact_of(ClusterFactory.build()) == []


def test_registry_delete_page_tells_what_registries_charts_and_clusters_lose(admin_client):
    registry = RegistryFactory(
        name="acme", is_default=True, chart_source=True, repositories=["charts/stable"]
    )
    PullSecretTarget.objects.create(
        cluster=ClusterFactory(name="prod"), namespace="web", registry=registry,
        secret_name="wharf-acme",
    )  # fmt: skip

    page = admin_client.get(reverse("registries:registry_delete", args=[registry.pk])).context

    assert page["impact"] == [
        "It is the default registry; no registry will be default afterwards.",
        "Wharf removes 1 pull secret it wrote (cluster prod: web), where the cluster is "
        "reachable, and the entries it added to ServiceAccounts.",
        "It is a chart source for 1 repository (charts/stable): nothing indexed from it is "
        "in the Chart Store.",
    ]


def test_public_registry_delete_page_says_no_credentials_are_injected(admin_client):
    registry = RegistryFactory(registry_type="public", username="", secret="", auth_type="")
    html = admin_client.get(
        reverse("registries:registry_delete", args=[registry.pk])
    ).content.decode()
    assert "It is public: no credentials are injected into any cluster." in html


def test_a_referenced_secret_is_said_to_stay_not_to_be_removed(admin_client):
    from clusters.models import RegistryAccess

    registry = RegistryFactory(name="acme")
    RegistryAccess.objects.create(
        registry=registry, all_clusters=True,
        credentials=RegistryAccess.Credentials.SECRET, secret_name="regcred",
    )  # fmt: skip
    prod = ClusterFactory(name="prod")
    for namespace in ("web", "api"):
        PullSecretTarget.objects.create(
            cluster=prod, namespace=namespace, registry=registry, secret_name="regcred"
        )

    lines = admin_client.get(reverse("registries:registry_delete", args=[registry.pk])).context[
        "impact"
    ]

    assert lines == [
        "2 referenced secrets (regcred) (cluster prod: api, web) are yours, not Wharf's: "
        "they stay in the cluster. Wharf takes them off the default ServiceAccounts it added "
        "them to, and its status of them goes."
    ]
    assert not any("removes" in line for line in lines)


def delete_page_impact(client, url_name: str, obj) -> list[str]:
    return client.get(reverse(url_name, args=[obj.pk])).context["impact"]


def test_a_referenced_secret_listed_in_service_accounts_is_said_to_be_taken_off_them(
    admin_client,
):
    from clusters.models import RegistryAccess

    registry = RegistryFactory(name="acme")
    RegistryAccess.objects.create(
        registry=registry, all_clusters=True, add_to_default_service_account=True,
        credentials=RegistryAccess.Credentials.SECRET, secret_name="regcred",
    )  # fmt: skip
    PullSecretTarget.objects.create(
        cluster=ClusterFactory(name="prod"), namespace="web", registry=registry,
        secret_name="regcred",
    )  # fmt: skip

    lines = delete_page_impact(admin_client, "registries:registry_delete", registry)

    assert lines == [
        "1 referenced secret (regcred) (cluster prod: web) is yours, not Wharf's: it stays in "
        "the cluster. Wharf takes it off the default ServiceAccounts it added it to, and its "
        "status of it goes."
    ]


def test_secrets_not_added_to_service_accounts_are_not_said_to_be_taken_off_them(admin_client):
    from clusters.models import RegistryAccess

    registry = RegistryFactory(name="acme")
    RegistryAccess.objects.create(
        registry=registry, all_clusters=True, add_to_default_service_account=False
    )
    prod = ClusterFactory(name="prod")
    for namespace in ("web", "api"):
        PullSecretTarget.objects.create(
            cluster=prod, namespace=namespace, registry=registry, secret_name="wharf-acme"
        )

    lines = delete_page_impact(admin_client, "registries:registry_delete", registry)

    assert lines == [
        "Wharf removes 2 pull secrets it wrote (cluster prod: api, web), where the cluster is "
        "reachable."
    ]


def test_an_inactive_clusters_delete_page_says_its_secrets_stay(admin_client):
    cluster = ClusterFactory(name="old", active=False)

    lines = delete_page_impact(admin_client, "clusters:cluster_delete", cluster)

    assert lines == [
        "It is inactive: Wharf does not contact it, so the pull secrets it wrote there before stay."
    ]


def test_a_cluster_delete_page_counts_environments_with_their_plural(admin_client):
    from tests.clusters.factories import EnvironmentFactory

    one = ClusterFactory(name="one")
    EnvironmentFactory(cluster=one, name="one-web", namespace="web")
    two = ClusterFactory(name="two")
    EnvironmentFactory(cluster=two, name="two-web", namespace="web")
    EnvironmentFactory(cluster=two, name="two-api", namespace="api")

    assert delete_page_impact(admin_client, "clusters:cluster_delete", one)[0] == (
        "Its 1 environment goes with it: one-web."
    )
    assert delete_page_impact(admin_client, "clusters:cluster_delete", two)[0] == (
        "Its 2 environments go with it: two-api, two-web."
    )


def test_a_chart_source_with_nothing_indexed_is_said_to_take_nothing_from_the_store(
    admin_client,
):
    from charts.models import ChartSource, HelmRepository

    registry = RegistryFactory(chart_source=True, repositories=["charts/stable", "team/apps"])
    repository = HelmRepository.objects.create(name="stable", url="https://charts.example.com")
    ChartSource.objects.create(kind="helm", helm_repository=repository)

    registry_lines = delete_page_impact(admin_client, "registries:registry_delete", registry)
    helm_lines = delete_page_impact(admin_client, "charts:helmrepository_delete", repository)

    assert (
        "It is a chart source for 2 repositories (charts/stable, team/apps): nothing indexed "
        "from them is in the Chart Store."
    ) in registry_lines
    assert helm_lines == ["Nothing indexed from it is in the Chart Store."]
