"""What deleting a registry, cluster or environment costs the pull secrets Wharf keeps.

Wharf removes only what it wrote: its own ``wharf-<registry>`` secrets and the entries it
added to ServiceAccounts. A secret a rule merely names ("Specify image pull secret") is
the user's: it stays, and the page says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from clusters.models import Cluster, Environment, PullSecretTarget, RegistryAccess
from config.impact import count
from registries.models import Registry


def _places(targets: Iterable[PullSecretTarget]) -> str:
    by_cluster: dict[str, list[str]] = {}
    for target in targets:
        by_cluster.setdefault(target.cluster.name, []).append(target.namespace)
    return "; ".join(
        f"cluster {c}: {', '.join(sorted(ns))}" for c, ns in sorted(by_cluster.items())
    )


def _split(targets: Iterable[PullSecretTarget]) -> tuple[list, list]:
    """(targets whose secret Wharf wrote, targets that reference a user's own secret)."""
    targets = list(targets)
    referencing = set(
        RegistryAccess.objects.filter(
            registry__in={t.registry_id for t in targets},
            credentials=RegistryAccess.Credentials.SECRET,
        ).values_list("registry_id", flat=True)
    )
    owned = [t for t in targets if t.registry_id not in referencing]
    kept = [t for t in targets if t.registry_id in referencing]
    return owned, kept


def _lines(owned: list, kept: list, *, where: bool = True) -> list[str]:
    lines = []
    if owned:
        secrets = count(len(owned), "pull secret")
        place = f" ({_places(owned)})" if where else ""
        lines.append(
            f"Wharf removes {secrets} it wrote{place}, where the cluster is reachable, and "
            "the entries it added to ServiceAccounts."
        )
    if kept:
        names = ", ".join(sorted({t.secret_name for t in kept}))
        place = f" ({_places(kept)})" if where else ""
        lines.append(
            f"{count(len(kept), 'referenced secret')} ({names}){place} "
            f"{'is' if len(kept) == 1 else 'are'} yours, not Wharf's: "
            f"{'it stays' if len(kept) == 1 else 'they stay'} in the cluster; only "
            "Wharf's status of them goes."
        )
    return lines


def registry_impact(registry: Registry) -> list[str]:
    """Where the registry's pull secret is: what Wharf removes, and what it keeps."""
    if registry.is_public:
        return ["It is public: no credentials are injected into any cluster."]
    targets = registry.targets.select_related("cluster")
    if not targets:
        return ["Its credentials are not injected into any cluster."]
    return _lines(*_split(targets))


def cluster_impact(cluster: Cluster) -> list[str]:
    lines = []
    environments = list(cluster.environments.values_list("name", flat=True))
    if environments:
        lines.append(
            f"Its {count(len(environments), 'environment')} "
            f"{'goes' if len(environments) == 1 else 'go'} with it: {', '.join(environments)}."
        )
    targets = cluster.targets.select_related("cluster")
    if not targets:
        lines.append("Wharf keeps no pull secrets in it.")
        return lines
    return lines + _lines(*_split(targets))


def environment_impact(environment: Environment) -> list[str]:
    targets = PullSecretTarget.objects.filter(
        cluster=environment.cluster_id, namespace=environment.namespace
    ).select_related("cluster")
    if not targets:
        return ["Wharf keeps no pull secrets in its namespace."]
    return _lines(*_split(targets))
