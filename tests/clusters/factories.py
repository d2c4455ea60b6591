"""Factories for clusters, environments and access rules."""

import factory

from clusters.models import Cluster, Environment, RegistryAccess


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    name = factory.Sequence(lambda n: f"cluster-{n}")
    api_url = factory.Sequence(lambda n: f"https://cluster{n}.example.com:6443")
    token = factory.Sequence(lambda n: f"cluster-token-{n}-do-not-leak")


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment

    name = factory.Sequence(lambda n: f"env-{n}")
    cluster = factory.SubFactory(ClusterFactory)
    namespace = factory.Sequence(lambda n: f"namespace-{n}")


def inject(registry, *, clusters=(), **fields) -> RegistryAccess:
    """Give ``registry`` an access rule: include these clusters (all clusters when none)."""
    fields.setdefault("all_clusters", not clusters)
    rule = RegistryAccess.objects.create(registry=registry, **fields)
    rule.clusters.set(clusters)
    return rule
