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
        "It is a chart source for 1 repository (charts/stable): 0 charts indexed from it "
        "leave the Chart Store.",
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
        "they stay in the cluster; only Wharf's status of them goes."
    ]
    assert not any("removes" in line for line in lines)
