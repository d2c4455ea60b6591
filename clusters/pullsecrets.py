"""Image pull secrets kept alive in clusters: desired state, diff, apply.

Plain functions the Celery tasks, the views and the benchmark call:

- :func:`desired_targets` says which (namespace, registry) of a cluster should
  have which secret, from the access rules and the environments (no network);
- :func:`request_reconcile` marks those targets pending and queues a reconcile
  once the transaction commits;
- :func:`reconcile_cluster` reads the cluster once (one LIST of Wharf-labelled
  secrets), writes only the differences, removes Wharf secrets no longer wanted,
  and records every target's status as it goes. It never raises for a cluster
  problem: errors land on the targets.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.conf import settings
from django.template.defaultfilters import pluralize
from django.utils import timezone

from clusters import kube
from clusters.models import Cluster, PullSecretTarget, ReconcileRun, RegistryAccess
from config import runs
from registries.models import Registry
from registries.oci import RegistryError
from registries.providers import EcrProvider

log = logging.getLogger(__name__)

SECRET_TYPE = "kubernetes.io/dockerconfigjson"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "wharf"
REGISTRY_LABEL = "wharf.dev/registry"
# Both labels: managed-by=wharf alone is a well-known label another tool may also set.
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER},{REGISTRY_LABEL}"
# On a default ServiceAccount: the imagePullSecrets entries Wharf added (and may remove).
SERVICE_ACCOUNT_ANNOTATION = "wharf.dev/image-pull-secrets"

ECR_TOKEN_LIFETIME = dt.timedelta(hours=12)
ECR_RENEW_BEFORE = dt.timedelta(hours=6)

Status = PullSecretTarget.Status


def secret_name(registry: Registry) -> str:
    """The secret Wharf writes for ``registry``: registry names are already DNS-safe."""
    return f"wharf-{registry.name}"


# --- desired state -------------------------------------------------------------


@dataclass(frozen=True)
class DesiredTarget:
    namespace: str
    registry_id: int
    registry_name: str
    secret_name: str
    managed: bool  # True: Wharf writes the secret; False: it must already exist
    link_service_account: bool

    @property
    def key(self) -> tuple[str, int]:
        return (self.namespace, self.registry_id)


def injecting_rules() -> list[RegistryAccess]:
    """Access rules of private registries, with their registry and chosen clusters."""
    return list(
        RegistryAccess.objects.exclude(registry__registry_type=Registry.Type.PUBLIC)
        .select_related("registry")
        .prefetch_related("clusters")
    )


def selects(rule: RegistryAccess, cluster: Cluster) -> bool:
    chosen = {c.pk for c in rule.clusters.all()}
    if rule.mode == RegistryAccess.Mode.INCLUDE:
        return rule.all_clusters or cluster.pk in chosen
    return cluster.pk not in chosen


def desired_targets(
    cluster: Cluster, rules: list[RegistryAccess] | None = None
) -> list[DesiredTarget]:
    """Every (namespace, registry) of ``cluster`` that should have a pull secret."""
    if not cluster.active:
        return []
    rules = injecting_rules() if rules is None else rules
    namespaces = sorted(set(cluster.environments.values_list("namespace", flat=True)))
    targets = []
    for rule in rules:
        if not selects(rule, cluster):
            continue
        managed = rule.uses_registry_credentials
        name = secret_name(rule.registry) if managed else rule.secret_name
        if not name:
            continue
        for namespace in namespaces:
            targets.append(
                DesiredTarget(
                    namespace=namespace,
                    registry_id=rule.registry_id,
                    registry_name=rule.registry.name,
                    secret_name=name,
                    managed=managed,
                    link_service_account=rule.add_to_default_service_account,
                )
            )
    return targets


def clusters_of_registry(registry: Registry) -> set[int]:
    """Clusters where ``registry`` has targets now or is selected by its rule."""
    ids = set(PullSecretTarget.objects.filter(registry=registry).values_list("cluster", flat=True))
    rule = RegistryAccess.objects.filter(registry=registry).first()
    if rule is not None and not registry.is_public:
        ids |= set(rule.selected_clusters().values_list("pk", flat=True))
    return ids


def sync_target_rows(
    cluster: Cluster, desired: Iterable[DesiredTarget], *, pending: bool
) -> dict[tuple[str, int], PullSecretTarget]:
    """Make a status row for every desired target (new ones pending); all rows by key."""
    rows = {(r.namespace, r.registry_id): r for r in cluster.targets.all()}
    new = [
        PullSecretTarget(
            cluster=cluster,
            namespace=t.namespace,
            registry_id=t.registry_id,
            secret_name=t.secret_name,
            status=Status.PENDING,
        )
        for t in desired
        if t.key not in rows
    ]
    PullSecretTarget.objects.bulk_create(new, ignore_conflicts=True)
    renamed = []  # the rule switched between Wharf's secret and a specified one
    for t in desired:
        row = rows.get(t.key)
        if row is not None and row.secret_name != t.secret_name:
            row.secret_name = t.secret_name
            renamed.append(row)
    PullSecretTarget.objects.bulk_update(renamed, ["secret_name"])
    if pending:
        cluster.targets.exclude(status=Status.PENDING).update(status=Status.PENDING)
    if new or pending:
        rows = {(r.namespace, r.registry_id): r for r in cluster.targets.all()}
    return rows


def request_reconcile(
    cluster_ids: Iterable[int],
    *,
    trigger: str = ReconcileRun.Trigger.CHANGE,
    mark_pending: bool = True,
) -> list[ReconcileRun]:
    """Mark the clusters' targets pending now; queue a reconcile of each after the commit.

    A cluster whose reconcile already waits joins it; one asked for while a reconcile runs
    waits, and is handed on when that one ends (so no change is lost). The schedule does
    not mark anything pending: nothing changed, the reconcile only checks.
    """
    ids = sorted(set(cluster_ids))
    if not ids:
        return []
    rules = injecting_rules()
    queued = []
    for cluster in Cluster.objects.filter(pk__in=ids):
        if cluster.active and mark_pending:
            sync_target_rows(cluster, desired_targets(cluster, rules), pending=True)
        queued.append(runs.queue_run(ReconcileRun, cluster=cluster, trigger=trigger))
    return queued


# --- secret content ---------------------------------------------------------------


@dataclass(frozen=True)
class DockerLogin:
    server: str
    username: str
    password: str = field(repr=False)
    expires_at: dt.datetime | None = None


class CredentialError(Exception):
    """The registry's credentials could not be turned into a pull secret (e.g. no ECR token)."""


def docker_config_data(login: DockerLogin) -> dict[str, str]:
    """The ``data`` of a ``kubernetes.io/dockerconfigjson`` Secret (deterministic)."""
    auth = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
    config = {
        "auths": {
            login.server: {"username": login.username, "password": login.password, "auth": auth}
        }
    }
    raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return {".dockerconfigjson": base64.b64encode(raw).decode()}


def registry_login(rule: RegistryAccess, now: dt.datetime | None = None) -> DockerLogin:
    """The credentials a pull secret of ``rule.registry`` carries (ECR: a kept token)."""
    registry = rule.registry
    provider = registry.provider_spec
    if isinstance(provider, EcrProvider):
        return ecr_login(rule, now or timezone.now())
    login = provider.login(registry)
    return DockerLogin(provider.pull_secret_server(registry), login.username, login.password)


def ecr_login(rule: RegistryAccess, now: dt.datetime) -> DockerLogin:
    """The stored ECR token while more than 6 of its 12 hours remain; else a fresh one."""
    expires = rule.ecr_token_expires_at
    if rule.ecr_token and expires and expires - now > ECR_RENEW_BEFORE:
        return _stored_ecr_login(rule)
    try:
        token = rule.registry.ecr_token()
    except RegistryError as exc:  # "AWS did not issue an ECR token: …"
        raise CredentialError(str(exc)) from None
    # An expiry already past is not believable (clock skew, emulators): ECR tokens live 12h.
    new_expiry = token.expires_at if token.expires_at > now else now + ECR_TOKEN_LIFETIME
    stored = json.dumps(
        {"server": token.host, "username": token.username, "password": token.password}
    )
    # Compare-and-set, so that workers renewing at once agree on one token.
    renewed = RegistryAccess.objects.filter(pk=rule.pk, ecr_token_expires_at=expires).update(
        ecr_token=stored, ecr_token_expires_at=new_expiry
    )
    rule.refresh_from_db(fields=["ecr_token", "ecr_token_expires_at"])
    if not renewed:
        log.info("ECR token of %s was renewed by another worker", rule.registry)
    return _stored_ecr_login(rule)


def _stored_ecr_login(rule: RegistryAccess) -> DockerLogin:
    data = json.loads(rule.ecr_token)
    return DockerLogin(
        data["server"], data["username"], data["password"], rule.ecr_token_expires_at
    )


# --- reconcile ---------------------------------------------------------------------


@dataclass
class ReconcileResult:
    """What one reconcile of one cluster did (counts of secrets and service accounts)."""

    secrets: Counter = field(default_factory=Counter)  # created/updated/deleted/unchanged
    service_accounts_updated: int = 0
    failed: int = 0
    error: str = ""


def run_reconcile(run_id: int) -> ReconcileRun | None:
    """Do the queued reconcile ``run_id`` (what the task runs); safe to call twice."""
    return runs.execute(ReconcileRun, run_id, _reconcile_run)


def reconcile_cluster(cluster_id: int) -> ReconcileResult | None:
    """Reconcile one cluster now, in this thread, as a worker would (tests, benchmarks).

    Returns None when the cluster is gone or another reconcile holds its lease (the run
    made here then waits for it).
    """
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return None
    # The run a save queued, if one waits (as a worker would take it); else a new one.
    run = cluster.reconciles.filter(status=ReconcileRun.Status.QUEUED).first()
    if run is None:
        run = ReconcileRun.objects.create(cluster=cluster, trigger=ReconcileRun.Trigger.MANUAL)
    results: list[ReconcileResult] = []
    runs.execute(ReconcileRun, run.pk, lambda context: _reconcile_run(context, results))
    return results[0] if results else None


def _reconcile_run(
    context: runs.RunContext, results: list[ReconcileResult] | None = None
) -> runs.Outcome:
    cluster = Cluster.objects.get(pk=context.run.subject_id)
    try:
        result = _reconcile(cluster)
    except Exception as exc:
        # A bug must not leave targets pending forever or kill the worker: record it.
        log.exception("Reconcile of cluster %s failed unexpectedly", cluster)
        result = ReconcileResult(error=f"Wharf failed unexpectedly ({type(exc).__name__}).")
        cluster.targets.update(
            status=Status.FAILED,
            error=f"{result.error} The worker log has the details.",
            last_checked=timezone.now(),
        )
    Cluster.objects.filter(pk=cluster.pk).update(last_reconciled_at=timezone.now())
    if cluster.active:  # an inactive cluster was not asked anything
        cluster.record_health(
            not result.error, result.error or "The last reconcile reached the API server."
        )
    if results is not None:
        results.append(result)
    fields = {
        "secrets_created": result.secrets["created"],
        "secrets_updated": result.secrets["updated"],
        "secrets_deleted": result.secrets["deleted"],
        "service_accounts_updated": result.service_accounts_updated,
        "failed_targets": result.failed,
    }
    if result.error:
        return runs.Outcome(runs.RunStatus.FAILED, result.error, fields)
    if result.failed:
        failed = f"{result.failed} target{pluralize(result.failed)}"
        return runs.Outcome(
            runs.RunStatus.FAILED, f"{failed} failed; the status table says why.", fields
        )
    return runs.Outcome(fields=fields)


def _reconcile(cluster: Cluster) -> ReconcileResult:
    result = ReconcileResult()
    if not cluster.active:
        # Wharf leaves an inactive cluster as it is, and claims no status there.
        cluster.targets.all().delete()
        return result
    with _cluster_client(cluster) as api:
        # The two cluster-wide reads go out together now; the database work runs meanwhile.
        secrets_read = api.submit(lambda: api.list_secrets(MANAGED_SELECTOR))
        accounts_read = api.submit(api.default_service_accounts)
        rules = injecting_rules()
        desired = desired_targets(cluster, rules)
        run = _Run(cluster, sync_target_rows(cluster, desired, pending=False), result)
        contents = _secret_contents(rules, desired)
        try:
            # The one read: every Wharf-labelled secret of the cluster, all namespaces.
            existing = {(s.namespace, s.name): s for s in secrets_read.result()}
        except kube.KubeError as exc:
            result.error = str(exc)
            run.fail_all(str(exc))
            run.save()
            return result
        linked: dict[str, set[str]] = {}  # namespace -> pull secrets for its default account
        _apply_managed_secrets(
            api, [t for t in desired if t.managed], contents, existing, run, linked
        )
        _check_specified_secrets(api, [t for t in desired if not t.managed], run, linked)
        _remove_unwanted_secrets(api, desired, existing, run)
        _link_service_accounts(api, linked, run, accounts_read)
    run.drop_unwanted({t.key for t in desired})
    run.save()
    return result


def _cluster_client(cluster: Cluster) -> kube.KubeClient:
    """The cluster's client for one reconcile: its writes run
    WHARF_RECONCILE_CLUSTER_CONCURRENCY at a time, and stop in time for the run to record
    what it did before its time limit."""
    deadline = time.monotonic() + 0.9 * settings.WHARF_RECONCILE_TIME_LIMIT
    return kube.KubeClient(
        cluster.connection(),
        concurrency=settings.WHARF_RECONCILE_CLUSTER_CONCURRENCY,
        deadline=deadline,
    )


Content = tuple[dict[str, str], dt.datetime | None] | str  # (data, expiry) or an error


def _secret_contents(
    rules: list[RegistryAccess], desired: list[DesiredTarget]
) -> dict[int, Content]:
    """The secret data of each registry Wharf writes for here (built once per reconcile)."""
    needed = {t.registry_id for t in desired if t.managed}
    contents: dict[int, Content] = {}
    for rule in rules:
        if rule.registry_id not in needed:
            continue
        try:
            login = registry_login(rule)
            contents[rule.registry_id] = (docker_config_data(login), login.expires_at)
        except (CredentialError, ValueError) as exc:
            contents[rule.registry_id] = str(exc)
    return contents


def _apply_managed_secrets(
    api: kube.KubeClient,
    targets: list[DesiredTarget],
    contents: dict[int, Content],
    existing: dict[tuple[str, str], kube.SecretState],
    run: _Run,
    linked: dict[str, set[str]],
) -> None:
    writes = []  # (target, data, current, expiry): the API calls run concurrently
    for target in targets:
        current = existing.get((target.namespace, target.secret_name))
        # Listed on the default service account while the secret is there, even when this
        # run could not refresh it (no ECR token now, a 409 twice): unlisting it would
        # break new pods over what may be a passing fault.
        if target.link_service_account and current is not None:
            linked.setdefault(target.namespace, set()).add(target.secret_name)
        content = contents.get(target.registry_id, "No credentials for this registry.")
        if isinstance(content, str):
            run.mark(target.key, Status.FAILED, content)
            continue
        data, expires_at = content
        writes.append((target, data, current, expires_at))
    outcomes = api.each(lambda w: _apply_secret(api, w[0], w[1], w[2]), writes)
    # Recorded here, on this thread, in the targets' order: the same marks however the
    # calls interleaved.
    for (target, _, _, expires_at), outcome in zip(writes, outcomes, strict=True):
        if isinstance(outcome, kube.KubeError):
            run.mark(target.key, Status.FAILED, str(outcome))
            continue
        run.result.secrets[outcome] += 1
        run.mark(target.key, Status.IN_SYNC, expires_at=expires_at)
        if target.link_service_account:
            linked.setdefault(target.namespace, set()).add(target.secret_name)


def _remove_unwanted_secrets(
    api: kube.KubeClient,
    desired: list[DesiredTarget],
    existing: dict[tuple[str, str], kube.SecretState],
    run: _Run,
) -> None:
    """Delete Wharf-labelled secrets no longer wanted (the list only holds labelled ones).

    A secret a rule names ("Specify image pull secret") is wanted too, even one Wharf
    once wrote: it is referenced, and was just reported present.
    """
    wanted = {(t.namespace, t.secret_name) for t in desired}
    unwanted = [secret for key, secret in existing.items() if key not in wanted]
    outcomes = api.each(lambda s: api.delete_secret(s.namespace, s.name), unwanted)
    for secret, outcome in zip(unwanted, outcomes, strict=True):
        if isinstance(outcome, kube.KubeError):
            run.keep_unwanted(
                secret, f"Wharf no longer wants this secret but could not remove it: {outcome}"
            )
        else:
            run.result.secrets["deleted"] += 1


class _Run:
    """The status rows of one reconcile, written together at the end."""

    def __init__(self, cluster: Cluster, rows: dict, result: ReconcileResult) -> None:
        self.cluster = cluster
        self.rows = rows
        self.result = result
        self.now = timezone.now()
        self.kept: set[tuple[str, int]] = set()

    def mark(self, key, status: str, error: str = "", expires_at=None) -> None:
        row = self.rows.get(key)
        if status == Status.FAILED:
            self.result.failed += 1
        if row is None:
            return
        row.status, row.error, row.last_checked = status, error, self.now
        row.expires_at = expires_at

    def fail_all(self, error: str) -> None:
        for key in self.rows:
            self.mark(key, Status.FAILED, error)

    def fail_namespace(self, namespace: str, error: str) -> None:
        for (ns, registry_id), row in self.rows.items():
            if ns == namespace and row.status == Status.IN_SYNC:
                self.mark((ns, registry_id), Status.FAILED, error, row.expires_at)

    def keep_unwanted(self, secret: kube.SecretState, error: str) -> None:
        self.result.failed += 1
        for key, row in self.rows.items():
            if key[0] == secret.namespace and row.secret_name == secret.name:
                self.mark(key, Status.FAILED, error)
                self.kept.add(key)

    def drop_unwanted(self, wanted: set) -> None:
        gone = [
            row.pk for key, row in self.rows.items() if key not in wanted and key not in self.kept
        ]
        if gone:
            PullSecretTarget.objects.filter(pk__in=gone).delete()
        self.rows = {k: r for k, r in self.rows.items() if k in wanted or k in self.kept}

    def save(self) -> None:
        PullSecretTarget.objects.bulk_update(
            list(self.rows.values()),
            ["status", "error", "last_checked", "expires_at"],
            batch_size=500,
        )


def _matches(secret: kube.SecretState, labels: dict, data: dict) -> bool:
    return (
        secret.type == SECRET_TYPE
        and secret.data == data
        and all(secret.labels.get(k) == v for k, v in labels.items())
    )


def _foreign_secret(namespace: str, name: str) -> kube.KubeError:
    return kube.KubeError(
        f"A secret named {name} already exists in namespace {namespace} and was not created by "
        "Wharf, so Wharf leaves it alone: delete or rename it, or use “Specify image pull "
        "secret” to reference it."
    )


def _apply_secret(
    api: kube.KubeClient, target: DesiredTarget, data: dict, current: kube.SecretState | None
) -> str:
    """Create or replace one managed secret as needed: "created", "updated" or "unchanged"."""
    labels = {MANAGED_BY: MANAGER, REGISTRY_LABEL: target.registry_name}
    ns, name = target.namespace, target.secret_name
    if current is None:
        try:
            api.create_secret(ns, name, SECRET_TYPE, labels, data)
            return "created"
        except kube.KubeError as exc:
            if not exc.conflict:
                raise
        # 409: it exists after all (a stale list, or someone else's secret): read it afresh.
        current = api.read_secret(ns, name)
        if current is None:
            api.create_secret(ns, name, SECRET_TYPE, labels, data)
            return "created"
        if current.labels.get(MANAGED_BY) != MANAGER:
            raise _foreign_secret(ns, name)
    if _matches(current, labels, data):
        return "unchanged"
    if current.type != SECRET_TYPE:  # a Secret's type cannot change: replace the object
        api.delete_secret(ns, name)
        api.create_secret(ns, name, SECRET_TYPE, labels, data)
        return "updated"
    try:
        api.replace_secret_content(current, labels, data, current.resource_version)
    except kube.KubeError as exc:
        if not exc.conflict:
            raise
        fresh = api.read_secret(ns, name)  # changed since the list: retry once on a fresh read
        if fresh is None:
            api.create_secret(ns, name, SECRET_TYPE, labels, data)
        elif fresh.labels.get(MANAGED_BY) != MANAGER:  # replaced by someone else's meanwhile
            raise _foreign_secret(ns, name) from None
        elif not _matches(fresh, labels, data):
            api.replace_secret_content(fresh, labels, data, fresh.resource_version)
    return "updated"


def _check_specified_secrets(
    api: kube.KubeClient, targets: list[DesiredTarget], run: _Run, linked: dict[str, set[str]]
) -> None:
    """ "Specify image pull secret": Wharf creates nothing, it checks the secret is there."""
    for name in sorted({t.secret_name for t in targets}):
        try:
            present = api.namespaces_with_secret(name)
        except kube.KubeError as exc:
            for t in targets:
                if t.secret_name == name:
                    run.mark(t.key, Status.FAILED, str(exc))
            continue
        for t in (t for t in targets if t.secret_name == name):
            if t.namespace in present:
                run.mark(t.key, Status.IN_SYNC)
                if t.link_service_account:
                    linked.setdefault(t.namespace, set()).add(name)
            else:
                run.mark(
                    t.key,
                    Status.MISSING,
                    f"Secret {name} does not exist in namespace {t.namespace}: create it there "
                    f"(kubectl create secret docker-registry {name} -n {t.namespace} …).",
                )


def _link_service_accounts(
    api: kube.KubeClient,
    linked: dict[str, set[str]],
    run: _Run,
    listed: Future[dict[str, kube.ServiceAccountState]] | None = None,
) -> None:
    """List Wharf's secrets in each namespace's default ServiceAccount; unlist what went.

    ``listed``: the list of default ServiceAccounts, already asked for.
    """
    try:
        accounts = listed.result() if listed is not None else api.default_service_accounts()
    except kube.KubeError as exc:
        for namespace in linked:
            run.fail_namespace(namespace, str(exc))
        return
    namespaces = list(accounts)
    outcomes = api.each(
        lambda ns: _link_or_retry(api, accounts[ns], linked.get(ns, set())), namespaces
    )
    for namespace, outcome in zip(namespaces, outcomes, strict=True):
        if isinstance(outcome, kube.KubeError):
            run.fail_namespace(namespace, f"The default service account was not updated: {outcome}")
        elif outcome:
            run.result.service_accounts_updated += 1


def _link_or_retry(api: kube.KubeClient, account: kube.ServiceAccountState, want: set[str]) -> bool:
    """:func:`_link_one`, once more on a fresh read if the account changed since the list."""
    try:
        return _link_one(api, account, want)
    except kube.KubeError as exc:
        if not exc.conflict:
            raise
    fresh = api.default_service_accounts().get(account.namespace)
    return fresh is not None and _link_one(api, fresh, want)


def _link_one(api: kube.KubeClient, account: kube.ServiceAccountState, want: set[str]) -> bool:
    annotation = account.annotations.get(SERVICE_ACCOUNT_ANNOTATION, "")
    added_before = {n for n in annotation.split(",") if n}
    if not want and not added_before:
        return False
    current = list(account.pull_secrets)
    names = [n for n in current if n in want or n not in added_before]
    names += sorted(n for n in want if n not in names)
    # Only entries Wharf added are Wharf's to remove later; someone else's stay theirs.
    added = sorted((added_before & want) | (want - set(current)))
    new_annotation = ",".join(added) or None
    if names == current and new_annotation == (annotation or None):
        return False
    api.set_image_pull_secrets(account, names, {SERVICE_ACCOUNT_ANNOTATION: new_annotation})
    return True


def remove_cluster_secrets(cluster: Cluster) -> int:
    """Best effort before a cluster is deleted: remove every secret Wharf wrote there."""
    if not cluster.active or not cluster.api_url:
        return 0
    removed = 0
    try:
        with kube.KubeClient(cluster.connection()) as api:
            for secret in api.list_secrets(MANAGED_SELECTOR):
                try:  # one namespace refusing must not keep the others' secrets
                    api.delete_secret(secret.namespace, secret.name)
                    removed += 1
                except kube.KubeError as exc:
                    log.warning(
                        "Could not remove a pull secret of deleted cluster %s: %s", cluster, exc
                    )
            _link_service_accounts(api, {}, _Run(cluster, {}, ReconcileResult()))
    except kube.KubeError as exc:
        log.warning("Could not remove the pull secrets of deleted cluster %s: %s", cluster, exc)
    return removed
