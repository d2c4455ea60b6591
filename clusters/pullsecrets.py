"""Image pull secrets kept alive in clusters: desired state, diff, apply.

Plain functions the Celery tasks, the views and the benchmark call:

- :func:`desired_targets` says which (namespace, registry) of a cluster should
  have which secret, from the access rules, the environments and the cluster's
  namespaces as last listed (no network); :func:`rule_coverage` says the same of a
  rule being edited, for the Manage page's preview;
- :func:`request_reconcile` marks those targets pending and queues a reconcile
  once the transaction commits;
- :func:`reconcile_cluster` reads the cluster once (one LIST each of namespaces,
  Wharf-labelled secrets and ServiceAccounts), writes only the differences, removes
  Wharf secrets (and Wharf's imagePullSecrets entries) no longer wanted, and writes
  the status rows that changed. It never raises for a cluster problem: errors land
  on the targets.

Credential rotation: when a registry's credential changes (:func:`record_credential_change`,
from the registry signal) or an ECR token is renewed (:func:`ecr_login`), the credential
the secrets carried is kept (encrypted, on the access rule) and written beside the new one
for ``WHARF_PULL_SECRET_ROTATION_GRACE``; the first reconcile after that prunes it
(:func:`previous_login`). :func:`expiry_warning` says which targets' credential runs out
before Wharf would renew it.
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
from clusters.models import (
    ALL_SERVICE_ACCOUNTS,
    Cluster,
    ClusterNamespace,
    Environment,
    PullSecretTarget,
    ReconcileRun,
    RegistryAccess,
)
from clusters.pulltest import remove_leftover_pods
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
# On a ServiceAccount: the imagePullSecrets entries Wharf added (and may remove).
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
    # The ServiceAccounts listing the secret: names, or ("*",) for every one.
    service_accounts: tuple[str, ...] = ("default",)
    # From the namespace listing ("all except", a selector), not from an environment.
    listed: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.namespace, self.registry_id)


Namespaces = dict[str, dict[str, str]]  # name -> labels, as a reconcile lists them


def stored_namespaces(cluster: Cluster) -> Namespaces:
    """The cluster's namespaces as its last reconcile listed them."""
    return dict(cluster.namespaces.values_list("name", "labels"))


def rule_namespaces(
    rule: RegistryAccess, environments: Iterable[str], namespaces: Namespaces
) -> list[str]:
    """The namespaces ``rule`` covers on a cluster with these environment namespaces and
    these listed namespaces, sorted."""
    if not rule.uses_listed_namespaces:
        return sorted(set(environments))
    return sorted(
        name for name, labels in namespaces.items() if rule.covers_namespace(name, labels)
    )


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
    cluster: Cluster,
    rules: list[RegistryAccess] | None = None,
    namespaces: Namespaces | None = None,
) -> list[DesiredTarget]:
    """Every (namespace, registry) of ``cluster`` that should have a pull secret.

    ``namespaces``: the cluster's namespaces just listed; by default the ones its last
    reconcile stored (read only if a rule needs them).
    """
    if not cluster.active:
        return []
    rules = injecting_rules() if rules is None else rules
    rules = [rule for rule in rules if selects(rule, cluster)]
    environments = set(cluster.environments.values_list("namespace", flat=True))
    if namespaces is None and any(rule.uses_listed_namespaces for rule in rules):
        namespaces = stored_namespaces(cluster)
    targets = []
    for rule in rules:
        managed = rule.uses_registry_credentials
        name = secret_name(rule.registry) if managed else rule.secret_name
        if not name:
            continue
        accounts = rule.linked_service_accounts()
        for namespace in rule_namespaces(rule, environments, namespaces or {}):
            targets.append(
                DesiredTarget(
                    namespace=namespace,
                    registry_id=rule.registry_id,
                    registry_name=rule.registry.name,
                    secret_name=name,
                    managed=managed,
                    link_service_account=bool(accounts),
                    service_accounts=accounts,
                    listed=rule.uses_listed_namespaces,
                )
            )
    return targets


@dataclass
class ClusterCoverage:
    """What a rule covers on one cluster, as far as Wharf knows without asking it."""

    cluster: Cluster
    namespaces: list[str]
    listed_at: dt.datetime | None  # when the namespaces were listed (None: never yet)
    not_listed: list[str] = field(default_factory=list)  # environments' namespaces not seen

    SHOWN = 40  # namespaces named on the page; the rest are counted

    @property
    def shown(self) -> list[str]:
        return self.namespaces[: self.SHOWN]

    @property
    def more(self) -> int:
        return max(0, len(self.namespaces) - self.SHOWN)


def rule_coverage(rule: RegistryAccess, clusters: Iterable[Cluster]) -> list[ClusterCoverage]:
    """For the Manage page's preview of an unsaved rule: the namespaces it covers now on each
    of ``clusters`` (the active ones it selects), from the stored namespace lists; no network.
    """
    clusters = list(clusters)
    ids = [c.pk for c in clusters]
    listed: dict[int, Namespaces] = {pk: {} for pk in ids}
    for cluster_id, name, labels in ClusterNamespace.objects.filter(cluster_id__in=ids).values_list(
        "cluster_id", "name", "labels"
    ):
        listed[cluster_id][name] = labels
    environments: dict[int, set[str]] = {pk: set() for pk in ids}
    for cluster_id, namespace in Environment.objects.filter(cluster_id__in=ids).values_list(
        "cluster_id", "namespace"
    ):
        environments[cluster_id].add(namespace)
    coverage = []
    for cluster in clusters:
        namespaces = rule_namespaces(rule, environments[cluster.pk], listed[cluster.pk])
        unseen = []
        if cluster.namespaces_listed_at is not None:
            unseen = [n for n in namespaces if n not in listed[cluster.pk]]
        coverage.append(ClusterCoverage(cluster, namespaces, cluster.namespaces_listed_at, unseen))
    return coverage


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

    def same_credential(self, other: DockerLogin) -> bool:
        return (self.server, self.username, self.password) == (
            other.server,
            other.username,
            other.password,
        )

    def stored(self) -> str:
        """As JSON, for an encrypted field."""
        expires = self.expires_at.isoformat() if self.expires_at else None
        return json.dumps(
            {
                "server": self.server,
                "username": self.username,
                "password": self.password,
                "expires_at": expires,
            }
        )

    @classmethod
    def from_stored(cls, text: str) -> DockerLogin:
        data = json.loads(text)
        expires = data.get("expires_at")
        return cls(
            data["server"],
            data["username"],
            data["password"],
            dt.datetime.fromisoformat(expires) if expires else None,
        )


class CredentialError(Exception):
    """The registry's credentials could not be turned into a pull secret (e.g. no ECR token)."""


def _auth_entry(login: DockerLogin) -> dict[str, str]:
    auth = base64.b64encode(f"{login.username}:{login.password}".encode()).decode()
    return {"username": login.username, "password": login.password, "auth": auth}


def other_spelling(server: str) -> str:
    """The other key the kubelet reads as the same registry: ``host`` <-> ``https://host``.

    The kubelet's keyring puts ``https://`` before a key without a scheme, then keys the
    credential by host (and path, ``/v1/`` and ``/v2/`` ignored): both spellings land on one
    entry, and every credential there is tried (README, "Credential rotation").
    """
    return server.removeprefix("https://") if server.startswith("https://") else f"https://{server}"


def _host_of(server: str) -> str:
    return server.split("://", 1)[-1].split("/", 1)[0].lower()


def docker_config_data(login: DockerLogin, previous: DockerLogin | None = None) -> dict[str, str]:
    """The ``data`` of a ``kubernetes.io/dockerconfigjson`` Secret (deterministic).

    During a rotation ``previous`` rides beside ``login``: the new credential keeps the key
    Wharf always writes (the one tools that read a single entry, docker's and
    containers/image's, look up first), the previous one takes the other spelling of the
    same host, or its own key if it was for another host.
    """
    auths = {login.server: _auth_entry(login)}
    if previous is not None:
        same_host = _host_of(previous.server) == _host_of(login.server)
        auths[other_spelling(login.server) if same_host else previous.server] = _auth_entry(
            previous
        )
    config = {"auths": auths}
    raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return {".dockerconfigjson": base64.b64encode(raw).decode()}


def _static_login(registry: Registry) -> DockerLogin:
    provider = registry.provider_spec
    login = provider.login(registry)
    return DockerLogin(provider.pull_secret_server(registry), login.username, login.password)


def registry_login(rule: RegistryAccess, now: dt.datetime | None = None) -> DockerLogin:
    """The credentials a pull secret of ``rule.registry`` carries (ECR: a kept token)."""
    registry = rule.registry
    if isinstance(registry.provider_spec, EcrProvider):
        return ecr_login(rule, now or timezone.now())
    return _static_login(registry)


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
    update: dict = {"ecr_token": stored, "ecr_token_expires_at": new_expiry}
    if rule.ecr_token and expires and expires > now:
        # The token the secrets carry is still good: it stays beside the new one a while.
        old = _stored_ecr_login(rule)
        if not old.same_credential(DockerLogin(token.host, token.username, token.password)):
            update |= {"previous_credential": old.stored(), "credential_replaced_at": now}
    # Compare-and-set, so that workers renewing at once agree on one token.
    renewed = RegistryAccess.objects.filter(pk=rule.pk, ecr_token_expires_at=expires).update(
        **update
    )
    rule.refresh_from_db(fields=list(RegistryAccess.credential_fields))
    if not renewed:
        log.info("ECR token of %s was renewed by another worker", rule.registry)
    return _stored_ecr_login(rule)


def _stored_ecr_login(rule: RegistryAccess) -> DockerLogin:
    data = json.loads(rule.ecr_token)
    return DockerLogin(
        data["server"], data["username"], data["password"], rule.ecr_token_expires_at
    )


# --- rotation -------------------------------------------------------------------------


def rotation_grace() -> dt.timedelta:
    return dt.timedelta(seconds=settings.WHARF_PULL_SECRET_ROTATION_GRACE)


def login_in_use(registry: Registry, now: dt.datetime | None = None) -> DockerLogin | None:
    """What ``registry``'s pull secrets carry now, from the database alone (no network): the
    kept ECR token or the stored password; None when Wharf writes no secret for it."""
    rule = RegistryAccess.objects.filter(registry_id=registry.pk).first()
    if rule is None or not rule.uses_registry_credentials or registry.is_public:
        return None
    if isinstance(registry.provider_spec, EcrProvider):
        expires = rule.ecr_token_expires_at
        if not rule.ecr_token or expires is None or expires <= (now or timezone.now()):
            return None
        return _stored_ecr_login(rule)
    try:
        return _static_login(registry)
    except ValueError:  # a GCP key that does not parse: its secret was never written
        return None


def record_credential_change(registry: Registry, previous: DockerLogin | None) -> None:
    """``registry``'s credentials changed: drop the kept ECR token (new credentials may mean a
    new one) and keep ``previous``, what the secrets carried, for the rotation grace.

    Two changes within the grace keep only the latest previous credential: a secret holds
    two spellings of a host, and the one before that was replaced on purpose.
    """
    update: dict = {"ecr_token": "", "ecr_token_expires_at": None}
    if previous is not None and not registry.is_public:
        if isinstance(registry.provider_spec, EcrProvider):
            changed = True  # the new token is not known yet: it comes at the next reconcile
        else:
            try:
                changed = not previous.same_credential(_static_login(registry))
            except ValueError:
                changed = True
        if changed:
            update |= {
                "previous_credential": previous.stored(),
                "credential_replaced_at": timezone.now(),
            }
    RegistryAccess.objects.filter(registry=registry).update(**update)


def previous_login(
    rule: RegistryAccess, current: DockerLogin, now: dt.datetime
) -> tuple[DockerLogin, dt.datetime] | None:
    """The previous credential to carry beside ``current``, and when it is pruned; None when
    there is none any more.

    A rotation ends the grace after the change, or when the previous credential expires
    (an old ECR token), whichever comes first; the first reconcile after that prunes it,
    from the secrets and from the database.
    """
    replaced = rule.credential_replaced_at
    if not rule.previous_credential or replaced is None:
        return None
    try:
        previous: DockerLogin | None = DockerLogin.from_stored(rule.previous_credential)
    except (ValueError, KeyError, TypeError):
        previous = None
    ends = replaced + rotation_grace()
    if previous is not None and previous.expires_at is not None:
        ends = min(ends, previous.expires_at)
    if previous is None or now >= ends or previous.same_credential(current):
        RegistryAccess.objects.filter(pk=rule.pk, credential_replaced_at=replaced).update(
            previous_credential="", credential_replaced_at=None
        )
        rule.previous_credential, rule.credential_replaced_at = "", None
        return None
    return previous, ends


# --- credentials running out ------------------------------------------------------------


def reconcile_interval() -> dt.timedelta:
    return dt.timedelta(minutes=settings.WHARF_RECONCILE_INTERVAL)


def _when(moment: dt.datetime, now: dt.datetime) -> str:
    at = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if moment <= now:
        return f"expired at {at}"
    minutes = max(int((moment - now).total_seconds() // 60), 1)
    return f"expires at {at} (in {minutes} minute{pluralize(minutes)})"


def expiry_warning(
    target: PullSecretTarget,
    now: dt.datetime | None = None,
    interval: dt.timedelta | None = None,
) -> str:
    """Why ``target``'s credential runs out before Wharf renews it; "" when it does not.

    Flagged: a credential that expires before now + 2 reconcile intervals with no renewal
    due. Wharf renews an ECR token at the first reconcile once fewer than 6 of its 12 hours
    remain, so a renewal is due when renewals work here (the last reconcile wrote this
    secret, and recently) and the next scheduled reconcile, at most one interval away, falls
    in that window before the token expires. A credential Wharf cannot renew (a registry
    token with a fixed expiry) never has a renewal due: only a new one on the registry helps.
    """
    expires = target.expires_at
    now = now or timezone.now()
    interval = interval or reconcile_interval()
    if expires is None or expires >= now + 2 * interval:
        return ""
    when = _when(expires, now)
    if not isinstance(target.registry.provider_spec, EcrProvider):
        return (
            f"The credential in this secret {when} and Wharf cannot renew it: put a new "
            f"password or token on registry {target.registry.name} before then, or pods "
            "that start later cannot pull its images."
        )
    if target.status != Status.IN_SYNC:
        return (
            f"The ECR token in this secret {when}, and the last reconcile could not renew it "
            "(see the error): pods that start after that cannot pull from this registry."
        )
    checked = target.checked_at  # an unchanged row is rewritten only when it changes
    if checked is None or checked < now - 2 * interval:
        return (
            f"The ECR token in this secret {when}, and no reconcile has renewed it for more "
            "than two reconcile intervals: check that Celery beat and a worker of the "
            "reconcile queue run."
        )
    next_reconcile = now + interval
    if expires - ECR_RENEW_BEFORE <= next_reconcile < expires:
        return ""  # the next reconcile renews it in time
    return (
        f"The ECR token in this secret {when}, before the next scheduled reconcile can renew "
        f"it: keep WHARF_RECONCILE_INTERVAL well under 6 hours."
    )


# --- reconcile ---------------------------------------------------------------------


@dataclass
class ReconcileResult:
    """What one reconcile of one cluster did (counts of secrets and service accounts)."""

    secrets: Counter = field(default_factory=Counter)  # created/updated/deleted/unchanged
    service_accounts_updated: int = 0
    failed: int = 0
    error: str = ""
    namespaces_listed: bool = False  # the cluster's namespaces were listed (and stored)


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
    now = timezone.now()
    listed = {"namespaces_listed_at": now} if result.namespaces_listed else {}
    Cluster.objects.filter(pk=cluster.pk).update(last_reconciled_at=now, **listed)
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
        # The reads: every namespace (with its labels), every Wharf-labelled secret and every
        # ServiceAccount of the cluster, one LIST each, all three in flight together while
        # the database work runs.
        namespaces_read = api.submit(api.namespaces)
        secrets_read = api.submit(lambda: api.list_secrets(MANAGED_SELECTOR))
        accounts_read = api.submit(api.service_accounts)
        rules = injecting_rules()
        try:
            namespaces: Namespaces | None = namespaces_read.result()
            namespace_error = ""
        except kube.KubeError as exc:
            namespaces, namespace_error = None, str(exc)
        if namespaces is not None:
            record_namespaces(cluster, namespaces)
            result.namespaces_listed = True
        # Without a fresh list, the stored one: nothing is dropped over a failed read.
        desired = desired_targets(cluster, rules, namespaces)
        run = _Run(cluster, sync_target_rows(cluster, desired, pending=False), result)
        contents = _secret_contents(rules, desired)
        try:
            existing = {(s.namespace, s.name): s for s in secrets_read.result()}
        except kube.KubeError as exc:
            result.error = str(exc)
            run.fail_all(str(exc))
            run.save()
            return result
        reachable = _reachable_targets(desired, namespaces, namespace_error, run)
        if namespace_error:
            # Secrets of rules that follow the namespace list stay until it can be read.
            following = {
                rule.registry.name
                for rule in rules
                if rule.uses_listed_namespaces and selects(rule, cluster)
            }
            existing_unwanted = {
                key: secret
                for key, secret in existing.items()
                if secret.labels.get(REGISTRY_LABEL) not in following
            }
        else:
            existing_unwanted = existing
        linked: dict[str, set[str]] = {}  # namespace -> pull secrets for its ServiceAccounts
        _apply_managed_secrets(
            api, [t for t in reachable if t.managed], contents, existing, run, linked
        )
        _check_specified_secrets(api, [t for t in reachable if not t.managed], run, linked)
        _remove_unwanted_secrets(api, desired, existing_unwanted, run)
        _link_service_accounts(api, linked, run, _service_accounts_of(desired), accounts_read)
        remove_leftover_pods(api, cluster)  # test Pods a pull test could not delete
    run.drop_unwanted({t.key for t in desired})
    run.save()
    return result


def record_namespaces(cluster: Cluster, namespaces: Namespaces) -> None:
    """Store the namespaces just listed: rows written only for what changed."""
    stored = {row.name: row for row in cluster.namespaces.all()}
    ClusterNamespace.objects.bulk_create(
        [
            ClusterNamespace(cluster=cluster, name=name, labels=labels)
            for name, labels in namespaces.items()
            if name not in stored
        ],
        ignore_conflicts=True,
    )
    relabelled = []
    for name, row in stored.items():
        if name in namespaces and row.labels != namespaces[name]:
            row.labels = namespaces[name]
            relabelled.append(row)
    ClusterNamespace.objects.bulk_update(relabelled, ["labels"])
    gone = [row.pk for name, row in stored.items() if name not in namespaces]
    if gone:
        ClusterNamespace.objects.filter(pk__in=gone).delete()


def _reachable_targets(
    desired: list[DesiredTarget], namespaces: Namespaces | None, namespace_error: str, run: _Run
) -> list[DesiredTarget]:
    """The targets worth a write: not in a namespace the list says is not there, and (when
    the list failed) not of a rule that follows it. The others are failed with the reason."""
    reachable = []
    for target in desired:
        if namespaces is None and target.listed:
            run.mark(target.key, Status.FAILED, f"Could not list the namespaces: {namespace_error}")
        elif namespaces is not None and target.namespace not in namespaces:
            run.mark(
                target.key,
                Status.FAILED,
                f"Namespace {target.namespace} does not exist in cluster {run.cluster}: create "
                "it, or change the environment.",
            )
        else:
            reachable.append(target)
    return reachable


def _service_accounts_of(desired: list[DesiredTarget]) -> dict[tuple[str, str], set[str]]:
    """(namespace, secret) -> the ServiceAccounts that should list it ("*": every one)."""
    accounts: dict[tuple[str, str], set[str]] = {}
    for target in desired:
        accounts.setdefault((target.namespace, target.secret_name), set()).update(
            target.service_accounts
        )
    return accounts


# (data, expiry, end of a rotation) or an error
Content = tuple[dict[str, str], dt.datetime | None, dt.datetime | None] | str


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


def _secret_contents(
    rules: list[RegistryAccess], desired: list[DesiredTarget]
) -> dict[int, Content]:
    """The secret data of each registry Wharf writes for here (built once per reconcile)."""
    needed = {t.registry_id for t in desired if t.managed}
    contents: dict[int, Content] = {}
    now = timezone.now()
    for rule in rules:
        if rule.registry_id not in needed:
            continue
        try:
            login = registry_login(rule, now)
            previous, rotating_until = previous_login(rule, login, now) or (None, None)
            data = docker_config_data(login, previous)
            contents[rule.registry_id] = (data, login.expires_at, rotating_until)
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
        data, expires_at, rotating_until = content
        writes.append((target, data, current, expires_at, rotating_until))
    outcomes = api.each(lambda w: _apply_secret(api, w[0], w[1], w[2]), writes)
    # Recorded here, on this thread, in the targets' order: the same marks however the
    # calls interleaved.
    for (target, _, _, expires_at, rotating_until), outcome in zip(writes, outcomes, strict=True):
        if isinstance(outcome, kube.KubeError):
            run.mark(target.key, Status.FAILED, str(outcome))
            continue
        run.result.secrets[outcome] += 1
        run.mark(target.key, Status.IN_SYNC, expires_at=expires_at, rotating_until=rotating_until)
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
        self.before = {key: _recorded(row) for key, row in rows.items()}

    def mark(self, key, status: str, error: str = "", expires_at=None, rotating_until=None) -> None:
        row = self.rows.get(key)
        if status == Status.FAILED:
            self.result.failed += 1
        if row is None:
            return
        row.status, row.error = status, error
        if status == Status.FAILED:
            # The secret still holds what Wharf last wrote: its expiry (which the expiry
            # warning needs) and a rotation in it stay as they were.
            return
        row.expires_at = expires_at
        row.rotating_until = rotating_until

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
        """Write the rows whose status changed (an unchanged reconcile writes none): their
        ``last_checked`` says since when; the cluster's last reconcile says it still holds."""
        changed = [row for key, row in self.rows.items() if _recorded(row) != self.before.get(key)]
        for row in changed:
            row.last_checked = self.now
        PullSecretTarget.objects.bulk_update(
            changed,
            ["status", "error", "last_checked", "expires_at", "rotating_until"],
            batch_size=500,
        )


def _recorded(row: PullSecretTarget) -> tuple:
    return (row.status, row.error, row.expires_at, row.rotating_until)


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
    accounts_of: dict[tuple[str, str], set[str]] | None = None,
    listed: Future[list[kube.ServiceAccountState]] | None = None,
) -> None:
    """List Wharf's secrets in the chosen ServiceAccounts of each namespace; unlist what went
    (only entries Wharf added). ``accounts_of``: which accounts list which secret (by
    default the ``default`` one); ``listed``: the list of ServiceAccounts, already asked for.
    The patches run concurrently; the outcomes are recorded here, in the accounts' order."""
    accounts_of = accounts_of or {}
    try:
        accounts = listed.result() if listed is not None else api.service_accounts()
    except kube.KubeError as exc:
        for namespace in linked:
            run.fail_namespace(namespace, str(exc))
        return
    wants = [
        (
            account,
            {
                name
                for name in linked.get(account.namespace, ())
                if _lists(accounts_of.get((account.namespace, name), {"default"}), account.name)
            },
        )
        for account in accounts
    ]
    outcomes = api.each(lambda w: _link_or_retry(api, w[0], w[1]), wants)
    for (account, _), outcome in zip(wants, outcomes, strict=True):
        if isinstance(outcome, kube.KubeError):
            run.fail_namespace(
                account.namespace, f"Service account {account.name} was not updated: {outcome}"
            )
        elif outcome:
            run.result.service_accounts_updated += 1


def _lists(accounts: set[str], name: str) -> bool:
    return ALL_SERVICE_ACCOUNTS in accounts or name in accounts


def _link_or_retry(api: kube.KubeClient, account: kube.ServiceAccountState, want: set[str]) -> bool:
    """:func:`_link_one`, once more on a fresh read if the account changed since the list."""
    try:
        return _link_one(api, account, want)
    except kube.KubeError as exc:
        if not exc.conflict:
            raise
    fresh = api.read_service_account(account.namespace, account.name)
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
