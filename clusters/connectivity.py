""" "Test connection" for a cluster: the server's version, and what the token may do in
every namespace Wharf keeps pull secrets in."""

from __future__ import annotations

from dataclasses import dataclass, field

from clusters import kube
from clusters.models import Cluster


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    steps: list[str] = field(default_factory=list)


def check_connection(cluster: Cluster) -> ConnectionCheck:
    """Ask ``cluster`` (saved or not) for its version and the token's rights in each of its
    environment namespaces (``default`` while it has none); never raises."""
    namespaces = _namespaces(cluster)
    steps: list[str] = []
    try:
        with kube.KubeClient(cluster.connection()) as api:
            checks = api.check_secret_access_in(namespaces)
            pod_rights = api.check_pod_access_in(namespaces)
            list_namespaces = api.may("list", "namespaces", "")  # cluster-wide
    except kube.KubeError as exc:
        return ConnectionCheck(False, str(exc), steps)
    steps.append(f"Connected to Kubernetes {checks[0].version} at {cluster.api_url}.")
    denied = [
        (access.namespace, [verb for verb, ok in access.allowed.items() if ok is False])
        for access in checks
    ]
    denied = [(namespace, verbs) for namespace, verbs in denied if verbs]
    if denied:
        where = "; ".join(f"{', '.join(verbs)} secrets in namespace {ns}" for ns, verbs in denied)
        return ConnectionCheck(
            False,
            f"The token may not {where}: give its service account a role that may list, get, "
            "create, patch and delete secrets there.",
            steps,
        )
    unknown = [a.namespace for a in checks if any(ok is None for ok in a.allowed.values())]
    if unknown:
        return ConnectionCheck(
            True,
            "The server did not say whether the token may use secrets in "
            f"{_named(unknown)} (no SelfSubjectAccessReview answer); the first reconcile will "
            "tell.",
            steps,
        )
    no_patch = [a.namespace for a in checks if a.patch_service_accounts is False]
    if no_patch:
        steps.append(
            f"The token may not patch service accounts in {_named(no_patch)}: untick “Add to "
            "ServiceAccounts” on the registries' credential access, or grant it that right."
        )
    if list_namespaces is False:
        steps.append(
            "The token may not list namespaces (a cluster-wide right): access rules that cover "
            "“all namespaces except …” or namespaces matching a label selector fail on this "
            "cluster until a ClusterRole grants it; environment namespaces work without it."
        )
    steps.extend(_pull_test_rights(pod_rights))
    return ConnectionCheck(
        True, f"The token may list and write secrets in {_named(namespaces)}.", steps
    )


def _pull_test_rights(rights: dict[str, dict[str, bool | None]]) -> list[str]:
    """A note when the token lacks what "Test pull" needs (pods and events): the secrets
    work without it, so the check still passes."""
    denied = [
        (namespace, [right for right, ok in allowed.items() if ok is False])
        for namespace, allowed in rights.items()
    ]
    denied = [(namespace, missing) for namespace, missing in denied if missing]
    if not denied:
        return []
    where = "; ".join(f"{', '.join(missing)} in namespace {ns}" for ns, missing in denied)
    return [
        f"“Test pull” needs rights the token lacks ({where}): grant create, get, list and "
        "delete on pods and list on events there to use it."
    ]


def _named(namespaces: list[str]) -> str:
    label = "namespace" if len(namespaces) == 1 else "namespaces"
    return f"{label} {', '.join(namespaces)}"


def _namespaces(cluster: Cluster) -> list[str]:
    if cluster.pk:
        namespaces = sorted(set(cluster.environments.values_list("namespace", flat=True)))
        if namespaces:
            return namespaces
    return ["default"]
