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


def _split(targets: Iterable[PullSecretTarget]) -> tuple[list, list, bool]:
    """(targets whose secret Wharf wrote, targets that reference a user's own secret, and
    whether Wharf listed any of them in default ServiceAccounts)."""
    targets = list(targets)
    rules = {
        rule.registry_id: rule
        for rule in RegistryAccess.objects.filter(registry__in={t.registry_id for t in targets})
    }

    def referencing(target) -> bool:
        rule = rules.get(target.registry_id)
        return rule is not None and not rule.uses_registry_credentials

    owned = [t for t in targets if not referencing(t)]
    kept = [t for t in targets if referencing(t)]
    # A target without a rule (it went meanwhile) was listed as the default rule does.
    listed = any(
        rules[t.registry_id].add_to_default_service_account if t.registry_id in rules else True
        for t in targets
    )
    return owned, kept, listed


def _lines(owned: list, kept: list, listed: bool) -> list[str]:
    lines = []
    if owned:
        entries = ", and the entries it added to ServiceAccounts" if listed else ""
        lines.append(
            f"Wharf removes {count(len(owned), 'pull secret')} it wrote ({_places(owned)}), "
            f"where the cluster is reachable{entries}."
        )
    if kept:
        one = len(kept) == 1
        it, they = ("it", "it") if one else ("them", "they")
        names = ", ".join(sorted({t.secret_name for t in kept}))
        after = (
            f" Wharf takes {it} off the default ServiceAccounts it added {it} to, and its "
            f"status of {it} goes."
            if listed
            else f" Only Wharf's status of {it} goes."
        )
        lines.append(
            f"{count(len(kept), 'referenced secret')} ({names}) ({_places(kept)}) "
            f"{'is' if one else 'are'} yours, not Wharf's: {they} "
            f"{'stays' if one else 'stay'} in the cluster.{after}"
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
    if not cluster.active:
        # Wharf contacts no inactive cluster, not even to clean up before it goes.
        lines.append(
            "It is inactive: Wharf does not contact it, so the pull secrets it wrote there "
            "before stay."
        )
        return lines
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
