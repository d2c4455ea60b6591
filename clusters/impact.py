"""What deleting a registry, cluster or environment costs the pull secrets Wharf keeps."""

from __future__ import annotations

from clusters.models import Cluster, Environment, PullSecretTarget
from registries.models import Registry


def registry_impact(registry: Registry) -> list[str]:
    """Where the registry's pull secret is, which Wharf then removes."""
    if registry.is_public:
        return ["It is public: no credentials are injected into any cluster."]
    targets = registry.targets.select_related("cluster").order_by("cluster__name", "namespace")
    places: dict[str, list[str]] = {}
    for target in targets:
        places.setdefault(target.cluster.name, []).append(target.namespace)
    if not places:
        return ["Its credentials are not injected into any cluster."]
    where = "; ".join(f"cluster {c}: {', '.join(ns)}" for c, ns in places.items())
    return [
        f"Its pull secret is in {len(targets)} namespaces ({where}). Wharf removes those "
        "secrets (where the cluster is reachable) and their status."
    ]


def cluster_impact(cluster: Cluster) -> list[str]:
    lines = []
    environments = list(cluster.environments.values_list("name", flat=True))
    if environments:
        lines.append(f"Its environments go with it: {', '.join(environments)}.")
    targets = cluster.targets.select_related("registry")
    namespaces = sorted({t.namespace for t in targets})
    if targets:
        lines.append(
            f"Wharf removes its {len(targets)} pull secrets from namespaces "
            f"{', '.join(namespaces)} (if the cluster is reachable now), and removes "
            "the registry's secret from each default service account."
        )
    else:
        lines.append("Wharf keeps no pull secrets in it.")
    return lines


def environment_impact(environment: Environment) -> list[str]:
    count = PullSecretTarget.objects.filter(
        cluster=environment.cluster_id, namespace=environment.namespace
    ).count()
    if not count:
        return ["Wharf keeps no pull secrets in its namespace."]
    return [
        f"Wharf removes its {count} pull secrets from namespace {environment.namespace} of "
        f"cluster {environment.cluster}."
    ]
