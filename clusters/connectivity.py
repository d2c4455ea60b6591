""" "Test connection" for a cluster: the server's version, and what the token may do."""

from __future__ import annotations

from dataclasses import dataclass, field

from clusters import kube
from clusters.models import Cluster


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    steps: list[str] = field(default_factory=list)


def check_connection(cluster: Cluster, namespace: str = "") -> ConnectionCheck:
    """Ask ``cluster`` (saved or not) for its version and the token's rights; never raises."""
    namespace = namespace or _first_namespace(cluster)
    steps: list[str] = []
    try:
        with kube.KubeClient(cluster.connection()) as api:
            access = api.check_secret_access(namespace)
    except kube.KubeError as exc:
        return ConnectionCheck(False, str(exc), steps)
    steps.append(f"Connected to Kubernetes {access.version} at {cluster.api_url}.")
    unknown = [verb for verb, allowed in access.allowed.items() if allowed is None]
    denied = [verb for verb, allowed in access.allowed.items() if allowed is False]
    if unknown:
        return ConnectionCheck(
            True,
            f"The server did not say whether the token may use secrets in namespace {namespace} "
            "(no SelfSubjectAccessReview answer); the first reconcile will tell.",
            steps,
        )
    if denied:
        return ConnectionCheck(
            False,
            f"The token may not {', '.join(denied)} secrets in namespace {namespace}: give its "
            "service account a role that may list, get, create, patch and delete secrets.",
            steps,
        )
    if access.patch_service_accounts is False:
        steps.append(
            "The token may not patch service accounts: untick “Add to the default service "
            "account” on the registries' credential access, or grant it that right."
        )
    return ConnectionCheck(
        True, f"The token may list and write secrets in namespace {namespace}.", steps
    )


def _first_namespace(cluster: Cluster) -> str:
    if cluster.pk:
        namespace = cluster.environments.values_list("namespace", flat=True).first()
        if namespace:
            return namespace
    return "default"
