"""Clusters and environments (cluster + namespace) that Wharf injects pull secrets into.

Also the per-registry access rule ("Manage" on a registry) and the status of every
(cluster, namespace, registry) target that the reconciliation keeps up to date.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone

from clusters import kube, selectors
from config.crypto import EncryptedTextField
from config.runs import Lease, Leased, Run
from config.validators import validate_pem_certificates
from registries.models import NAME_RULE, Registry

DNS_LABEL = RegexValidator(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    "Use a Kubernetes namespace name: at most 63 lowercase letters, digits and -, "
    "starting and ending with a letter or digit.",
)
SECRET_NAME = RegexValidator(
    r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$",
    "Use a Kubernetes Secret name: lowercase letters, digits, - and ., "
    "starting and ending with a letter or digit.",
)
NAMESPACE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # as DNS_LABEL
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
# Left out of "all namespaces" unless the user takes them off the list: the control plane's.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


def name_list(text: str) -> list[str]:
    """Names typed one per line or separated by commas or spaces, in order, once each."""
    return list(dict.fromkeys(n for n in re.split(r"[\s,]+", text or "") if n))


def normalise_api_url(value: str) -> str:
    """An API server URL: trimmed, without a trailing slash; http(s) with a host, and nothing
    the client would not send (no query or fragment) or that must not be shown (a password)."""
    url = (value or "").strip().rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 address
        parts = urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(
            "Enter the API server URL with its scheme, for example https://10.0.0.1:6443."
        )
    if parts.query or parts.fragment:
        raise ValidationError("The API server URL takes no query or fragment.")
    if parts.username is not None or parts.password is not None:
        # Never sent by the client, and the URL is shown on pages and in errors.
        raise ValidationError(
            "The API server URL takes no user name or password: Wharf signs in with the "
            "bearer token."
        )
    return url


# In a rule's ServiceAccount choice: every ServiceAccount (never a name: names are DNS).
ALL_SERVICE_ACCOUNTS = "*"

# What reaching a cluster depends on, and what its health record is made of.
CONNECTION_FIELDS = ("api_url", "token", "ca_certificate", "skip_tls_verify")
HEALTH_FIELDS = ("health", "health_message", "health_checked_at")


class Cluster(Leased):
    """A Kubernetes cluster Wharf keeps pull secrets in; its lease is the reconcile lock."""

    name = models.CharField(max_length=30, unique=True, validators=[NAME_RULE])
    api_url = models.CharField(
        "API server URL", max_length=255, help_text="For example https://10.0.0.1:6443"
    )
    token = EncryptedTextField(
        "Bearer token", blank=True, help_text="A service account token Wharf uses for this cluster."
    )
    ca_certificate = models.TextField(
        "CA certificate", blank=True, help_text="The PEM certificate of the API server's CA."
    )
    skip_tls_verify = models.BooleanField(
        "Skip TLS verify", default=False, help_text="Do not check the API server's certificate."
    )
    active = models.BooleanField(
        default=True,
        help_text="Wharf contacts only active clusters: an inactive one is left as is.",
    )

    last_reconciled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the last reconcile listed the cluster's namespaces (kept in ClusterNamespace).
    namespaces_listed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        OK = "ok", "Reachable"
        FAILED = "failed", "Failing"

    # What the last Test connection of the saved settings, checked save or reconcile found:
    # the list shows it, and never asks the cluster itself.
    health = models.CharField(
        max_length=10, choices=Health.choices, default=Health.UNKNOWN, editable=False
    )
    health_message = models.TextField(blank=True, editable=False)
    health_checked_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_secret_fields = ("token",)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Cluster {self.name} {self.api_url}>"

    @classmethod
    def lease_protected_fields(cls) -> tuple[str, ...]:
        # Written only by reconciles: a stale form or admin save must not put it back.
        return (
            *super().lease_protected_fields(),
            "last_reconciled_at",
            "namespaces_listed_at",
            *HEALTH_FIELDS,
        )

    def get_absolute_url(self) -> str:
        return reverse("clusters:cluster_edit", args=[self.pk])

    def record_health(self, ok: bool, message: str) -> None:
        """Keep what a check or reconcile of the stored settings found (one UPDATE: a form
        or reconcile saving this row meanwhile keeps it)."""
        self.health = self.Health.OK if ok else self.Health.FAILED
        self.health_message = message
        self.health_checked_at = timezone.now()
        Cluster.objects.filter(pk=self.pk).update(
            **{name: getattr(self, name) for name in HEALTH_FIELDS}
        )

    def same_connection_as_stored(self) -> bool:
        """Whether this (maybe edited, unsaved) instance reaches the cluster as the stored row
        does: only then does a check of it say anything about the saved cluster."""
        if self.pk is None:
            return False
        stored = Cluster.objects.filter(pk=self.pk).first()
        return stored is not None and all(
            getattr(stored, name) == getattr(self, name) for name in CONNECTION_FIELDS
        )

    def clean(self) -> None:
        """Normalise and check the API server URL, the token (a stored one counts) and the TLS
        choice, wherever the cluster is saved from."""
        errors: dict[str, list[str]] = {}

        def add(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        try:
            self.api_url = normalise_api_url(self.api_url)
        except ValidationError as exc:
            add("api_url", exc.messages[0])
        token = (self.token or "").strip()
        if not token:
            add("token", "Enter the bearer token Wharf uses for this cluster.")
        elif not kube.token_is_valid(token):
            add("token", kube.BAD_TOKEN.capitalize() + ".")
        else:
            self.token = token
        ca = (self.ca_certificate or "").strip()
        if not ca:
            self.ca_certificate = ""
        else:
            try:
                self.ca_certificate = validate_pem_certificates(ca)
            except ValidationError as exc:
                add("ca_certificate", exc.messages[0])
            else:
                if self.skip_tls_verify:
                    add(
                        "skip_tls_verify",
                        "Either paste the CA certificate or skip TLS verification, not both.",
                    )
                if self.api_url.startswith("http://"):
                    add("ca_certificate", "A CA certificate needs an https:// API server URL.")
        try:
            super().clean()
        except ValidationError as exc:
            exc.update_error_dict(errors)  # type: ignore[arg-type]  # messages are plain text
        if errors:
            raise ValidationError(errors)

    def connection(self) -> kube.Connection:
        """How to reach this cluster's API server: the one input ``clusters.kube`` needs."""
        return kube.Connection(
            host=self.api_url,
            token=self.token,
            ca_pem=self.ca_certificate,
            skip_tls_verify=self.skip_tls_verify,
            timeout=settings.WHARF_KUBE_TIMEOUT,
        )

    def delete(self, *args, **kwargs):
        # Hold the reconcile lease while the cluster and its secrets go, so that no
        # reconcile running at the same time re-creates a secret just removed.
        if Lease.acquire(Cluster, self.pk) is None:
            raise ValidationError(
                f"A reconcile of {self.name} is running now. Delete the cluster again once "
                "it has finished (the status on its page says when)."
            )
        return super().delete(*args, **kwargs)


class Environment(models.Model):
    name = models.CharField(max_length=30, unique=True, validators=[NAME_RULE])
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="environments")
    namespace = models.CharField(max_length=63, validators=[DNS_LABEL])

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "namespace"], name="one_environment_per_namespace"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("clusters:environment_edit", args=[self.pk])


class ClusterNamespace(models.Model):
    """A namespace the last reconcile of its cluster listed, with its labels.

    What "all namespaces" and label selectors are matched against between reconciles (the
    Manage page's preview, the targets a save marks pending): pages never ask the cluster.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="namespaces")
    name = models.CharField(max_length=63)
    labels = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["cluster__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="one_row_per_namespace")
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id}/{self.name}"


class RegistryAccess(models.Model):
    """Which clusters get a registry's credentials, and how ("Manage" on a registry)."""

    class Mode(models.TextChoices):
        EXCLUDE = "exclude", "Do not inject credentials to clusters"
        INCLUDE = "include", "Auto-inject credentials to clusters"

    class Credentials(models.TextChoices):
        REGISTRY = "registry", "Use registry credentials"
        SECRET = "secret", "Specify image pull secret"

    registry = models.OneToOneField(Registry, on_delete=models.CASCADE, related_name="access")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.INCLUDE)
    all_clusters = models.BooleanField("All clusters", default=False)
    clusters = models.ManyToManyField(Cluster, blank=True, related_name="registry_rules")
    credentials = models.CharField(
        max_length=10, choices=Credentials.choices, default=Credentials.REGISTRY
    )
    secret_name = models.CharField(
        "Image pull secret name", max_length=253, blank=True, validators=[SECRET_NAME]
    )

    class Namespaces(models.TextChoices):
        ENVIRONMENTS = "environments", "The environments' namespaces"
        ALL = "all", "All namespaces except the ones listed"
        SELECTOR = "selector", "Namespaces matching a label selector"

    class ServiceAccounts(models.TextChoices):
        DEFAULT = "default", "The default ServiceAccount"
        ALL = "all", "Every ServiceAccount of the namespace"
        NAMED = "named", "The ServiceAccounts named below"

    # Which namespaces of each cluster the rule covers: the same choice on every cluster
    # (a selector can still tell clusters apart by their namespaces' labels).
    namespaces = models.CharField(
        "Namespaces", max_length=12, choices=Namespaces.choices, default=Namespaces.ENVIRONMENTS
    )
    excluded_namespaces = models.TextField(
        "Except these namespaces",
        blank=True,
        default=", ".join(SYSTEM_NAMESPACES),
        help_text="Namespace names, separated by commas or spaces. The system namespaces are "
        "listed to begin with.",
    )
    namespace_selector = models.CharField(
        "Label selector",
        max_length=selectors.MAX_LENGTH,
        blank=True,
        help_text="Kubernetes syntax, as in kubectl get -l: team=web, tier!=db, "
        "env in (prod,staging), env notin (dev), pull-secrets, !legacy.",
    )
    add_to_default_service_account = models.BooleanField(
        "Add to ServiceAccounts",
        default=True,
        help_text="List the secret in imagePullSecrets of the ServiceAccounts chosen below, "
        "so pods pull without anyone editing manifests.",
    )
    service_accounts = models.CharField(
        "ServiceAccounts",
        max_length=10,
        choices=ServiceAccounts.choices,
        default=ServiceAccounts.DEFAULT,
    )
    service_account_names = models.TextField(
        "ServiceAccount names",
        blank=True,
        help_text="Separated by commas or spaces; a namespace without one of them is fine.",
    )

    # The ECR token in use, kept until less than 6 of its 12 hours remain,
    # so a reconcile does not rewrite every secret with a fresh token each time.
    ecr_token = EncryptedTextField(blank=True, editable=False)
    ecr_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The credential the pull secrets carried before the last change (a new password, a
    # new ECR token), kept beside the new one for WHARF_PULL_SECRET_ROTATION_GRACE so
    # pods never meet a moment without a working one; JSON, never shown or logged.
    previous_credential = EncryptedTextField(blank=True, editable=False)
    credential_replaced_at = models.DateTimeField(null=True, blank=True, editable=False)

    updated_at = models.DateTimeField(auto_now=True)

    audit_secret_fields = ("ecr_token", "previous_credential")
    # Written only by the reconcile (compare-and-set) and the registry signal.
    credential_fields = (
        "ecr_token",
        "ecr_token_expires_at",
        "previous_credential",
        "credential_replaced_at",
    )

    class Meta:
        verbose_name = "registry credential access"
        verbose_name_plural = "registry credential access rules"

    def __str__(self) -> str:
        return f"credential access of {self.registry}"

    def save(self, *args, **kwargs) -> None:
        # The kept ECR token and previous credential are written only by the reconcile's
        # compare-and-set and the registry signal: a form save of a rule loaded earlier must
        # not put back old ones.
        if not self._state.adding and kwargs.get("update_fields") is None and not args:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.credential_fields
            ]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """Normalise and check the rule's fields; the cluster choice, a many-to-many the
        model sees only once saved, is :meth:`validate_clusters`'s."""
        if self.mode != self.Mode.INCLUDE:
            self.all_clusters = False  # "all clusters" means nothing to an exclude rule
        if self.credentials == self.Credentials.SECRET:
            if not self.secret_name:
                raise ValidationError(
                    {"secret_name": "Enter the name of the image pull secret in the clusters."}
                )
        else:
            self.secret_name = ""  # Wharf writes and names the secret itself
        self._clean_namespace_choice()
        self._clean_service_account_choice()
        super().clean()

    def _clean_namespace_choice(self) -> None:
        # The other choices' fields are kept (not checked): switching back finds them as left.
        if self.namespaces == self.Namespaces.SELECTOR:
            self.namespace_selector = (self.namespace_selector or "").strip()
            if not self.namespace_selector:
                raise ValidationError(
                    {"namespace_selector": "Enter a label selector, for example team=web."}
                )
            try:
                selectors.parse(self.namespace_selector)
            except selectors.SelectorError as exc:
                raise ValidationError(
                    {"namespace_selector": f"This label selector does not parse: {exc}"}
                ) from None
        elif self.namespaces == self.Namespaces.ALL:
            names = name_list(self.excluded_namespaces)
            bad = [n for n in names if NAMESPACE_NAME.match(n) is None]
            if bad:
                raise ValidationError(
                    {
                        "excluded_namespaces": f"“{bad[0]}” is not a namespace name: at most 63 "
                        "lowercase letters, digits and -, starting and ending with a letter "
                        "or digit."
                    }
                )
            self.excluded_namespaces = ", ".join(names)

    def _clean_service_account_choice(self) -> None:
        if not self.add_to_default_service_account:
            return
        if self.service_accounts == self.ServiceAccounts.NAMED:
            names = name_list(self.service_account_names)
            if not names:
                raise ValidationError(
                    {"service_account_names": "Enter the names of the ServiceAccounts."}
                )
            bad = [n for n in names if DNS_SUBDOMAIN.match(n) is None]
            if bad:
                raise ValidationError(
                    {
                        "service_account_names": f"“{bad[0]}” is not a ServiceAccount name: "
                        "lowercase letters, digits, - and ., starting and ending with a "
                        "letter or digit."
                    }
                )
            self.service_account_names = ", ".join(names)

    def covers_namespace(self, name: str, labels: dict[str, str] | None) -> bool:
        """For "all except" and selector rules: whether a listed namespace is covered (the
        environments' choice is :func:`clusters.pullsecrets.desired_targets`'s)."""
        if self.namespaces == self.Namespaces.ALL:
            return name not in name_list(self.excluded_namespaces)
        if self.namespaces == self.Namespaces.SELECTOR:
            try:
                return selectors.parse(self.namespace_selector).matches(labels)
            except selectors.SelectorError:  # stored before the rule existed: covers none
                return False
        return False

    @property
    def uses_listed_namespaces(self) -> bool:
        return self.namespaces != self.Namespaces.ENVIRONMENTS

    def linked_service_accounts(self) -> tuple[str, ...]:
        """The ServiceAccounts that list the secret: names, ``("*",)`` for all, or none."""
        if not self.add_to_default_service_account:
            return ()
        if self.service_accounts == self.ServiceAccounts.ALL:
            return (ALL_SERVICE_ACCOUNTS,)
        if self.service_accounts == self.ServiceAccounts.NAMED:
            return tuple(name_list(self.service_account_names))
        return ("default",)

    def validate_clusters(self, clusters) -> None:
        """An include rule names clusters or "all clusters". Every form that saves a rule (Wharf's
        and the admin's) calls this with the clusters chosen, after :meth:`clean`."""
        if self.mode == self.Mode.INCLUDE and not self.all_clusters and not clusters:
            message = "Pick the clusters to inject credentials into, or tick “All clusters”."
            raise ValidationError({"clusters": message})

    @property
    def uses_registry_credentials(self) -> bool:
        return self.credentials == self.Credentials.REGISTRY

    def selected_clusters(
        self, active: models.QuerySet | None = None, chosen=None
    ) -> models.QuerySet:
        """The active clusters this rule injects into; ``chosen``: the clusters ticked, for a
        rule not saved yet (by default its saved ones)."""
        active = Cluster.objects.filter(active=True) if active is None else active
        if chosen is None:
            chosen = self.clusters.values("pk") if self.pk else []
        if self.mode == self.Mode.INCLUDE:
            return active if self.all_clusters else active.filter(pk__in=chosen)
        return active.exclude(pk__in=chosen)

    def summary(self, active_ids: set[int] | None = None) -> str:
        """ "Registry credential access is auto injected to N clusters" (seed wording).

        ``active_ids`` (the active clusters' pks) and prefetched ``clusters`` let a list
        page summarise many rules without a query each.
        """
        if self.mode == self.Mode.INCLUDE and self.all_clusters:
            return "Registry credential access is auto injected to all clusters"
        if active_ids is None:
            active_ids = set(Cluster.objects.filter(active=True).values_list("pk", flat=True))
        chosen = {c.pk for c in self.clusters.all()} & active_ids
        count = len(chosen) if self.mode == self.Mode.INCLUDE else len(active_ids - chosen)
        return f"Registry credential access is auto injected to {count} cluster{pluralize(count)}"


class PullSecretTarget(models.Model):
    """One (cluster, namespace, registry) the reconciliation looks after, and how it went."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_SYNC = "in-sync", "In sync"
        FAILED = "failed", "Failed"
        MISSING = "missing", "Missing"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="targets")
    namespace = models.CharField(max_length=63)
    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="targets")
    secret_name = models.CharField(max_length=253)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    last_checked = models.DateTimeField(null=True, blank=True)  # when the status last changed
    expires_at = models.DateTimeField("Credential expires", null=True, blank=True)
    # While the secret also carries the previous credential: when the reconcile prunes it.
    rotating_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cluster__name", "namespace", "registry__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "namespace", "registry"], name="one_target_per_namespace"
            )
        ]

    def __str__(self) -> str:
        return f"{self.registry_id}@{self.cluster_id}/{self.namespace}"

    @property
    def checked_at(self):
        """When this status was last confirmed: a reconcile writes a row only when its status
        changes (``last_checked``), so a later reconcile of the cluster confirmed it too."""
        reconciled = self.cluster.last_reconciled_at if self.cluster_id else None
        if self.status == self.Status.PENDING or reconciled is None:
            return self.last_checked
        return max(filter(None, (self.last_checked, reconciled)))


class ReconcileRun(Run):
    """One reconcile of one cluster's pull secrets: what it wrote and how it went."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        CHANGE = "change", "Change"
        MANUAL = "manual", "Reconcile now"

    task_name = "clusters.tasks.reconcile_cluster_pull_secrets"
    kind = "pull-secret reconcile"
    time_limit_setting = "WHARF_RECONCILE_TIME_LIMIT"
    subject_field = "cluster"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="reconciles")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.CHANGE)
    secrets_created = models.PositiveIntegerField(default=0)
    secrets_updated = models.PositiveIntegerField(default=0)
    secrets_deleted = models.PositiveIntegerField(default=0)
    service_accounts_updated = models.PositiveIntegerField(default=0)
    failed_targets = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["cluster", "status"])]


# --- in-cluster pull tests (clusters/pulltest.py) ------------------------------------------

DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
# distribution/reference's grammar: path components, then an optional tag and digest.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_PATH = re.compile(
    rf"(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
IMAGE_HOST = re.compile(r"[a-zA-Z0-9.-]+(?::[0-9]{1,5})?")


def split_image_reference(reference: str) -> tuple[str, str]:
    """``(host, rest)`` of an image reference; the host is "" when the reference names none
    (as for Docker Hub's ``nginx:1.27``): like docker, the first part is a host only when it
    holds a dot or a colon, or is ``localhost``."""
    first, slash, rest = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", reference


def validate_image_of_registry(reference: str, registry: Registry) -> str:
    """``reference`` trimmed, if it is an image reference on ``registry``'s host; else a
    ValidationError that says what to type."""
    reference = (reference or "").strip()
    registry_host = registry.url.partition("/")[0].lower()
    docker_hub = registry.provider_spec.key == "docker-hub"
    example = f"{'' if docker_hub else registry_host + '/'}team/app:1.0"
    if not reference:
        raise ValidationError(f"Name an image of {registry} to test pulls with, e.g. {example}.")
    host, rest = split_image_reference(reference)
    if host and not IMAGE_HOST.fullmatch(host):
        raise ValidationError(f"“{host}” is not a registry host name: type e.g. {example}.")
    if docker_hub:
        if host and host.lower() not in DOCKER_HUB_HOSTS:
            raise ValidationError(
                f"{reference} is on {host}, not on Docker Hub ({registry}'s registry): name an "
                f"image of Docker Hub, e.g. {example}."
            )
    elif not host:
        raise ValidationError(
            f"Name the image with {registry}'s host, {registry_host}: e.g. {example}."
        )
    elif host.lower() != registry_host:
        raise ValidationError(
            f"{reference} is on {host}, not on {registry}'s host {registry_host}: a pull test "
            f"proves {registry}'s pull secret, so name an image there, e.g. {example}."
        )
    if not IMAGE_PATH.fullmatch(rest):
        raise ValidationError(
            f"“{reference}” is not an image reference: the repository path takes lowercase "
            "letters, digits and . _ - /, then an optional :tag and @sha256:digest "
            f"(e.g. {example})."
        )
    return reference


class PullTestImage(models.Model):
    """The image a registry's pull tests pull (remembered, so a whole cluster can be tested)."""

    registry = models.OneToOneField(
        Registry, on_delete=models.CASCADE, related_name="pull_test_image"
    )
    image = models.CharField("Test image", max_length=500)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.image

    def clean(self) -> None:
        try:
            self.image = validate_image_of_registry(self.image, self.registry)
        except ValidationError as exc:
            raise ValidationError({"image": exc.messages}) from None


class PullTestRun(Run):
    """One in-cluster pull test: of one target, or of every target of a cluster."""

    task_name = "clusters.tasks.check_cluster_pulls"
    kind = "pull test"
    time_limit_setting = "WHARF_PULL_TEST_TIME_LIMIT"
    # Its own subject: a test must not hold the cluster's lease (reconciles would wait).

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="pull_tests")
    # None: every target of the cluster.
    target = models.ForeignKey(
        PullSecretTarget, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    pulled = models.PositiveIntegerField(default=0)
    not_pulled = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-queued_at", "-id"]


class PullTestResult(models.Model):
    """The last pull test of one target, and the test Pod it made (until it is gone)."""

    class Result(models.TextChoices):
        TESTING = "testing", "Testing"
        PULLED = "pulled", "Pulled"
        NOT_PULLED = "not-pulled", "Not pulled"
        TIMED_OUT = "timed-out", "Timed out"
        ERROR = "error", "Not tested"

    target = models.OneToOneField(
        PullSecretTarget, on_delete=models.CASCADE, related_name="pull_test"
    )
    run = models.ForeignKey(PullTestRun, on_delete=models.SET_NULL, null=True, blank=True)
    result = models.CharField(max_length=12, choices=Result.choices, default=Result.TESTING)
    reason = models.CharField(max_length=64, blank=True)  # e.g. ErrImagePull
    message = models.TextField(blank=True)
    image = models.CharField(max_length=500, blank=True)
    tested_at = models.DateTimeField(null=True, blank=True)
    pod_name = models.CharField(max_length=63, blank=True)
    # Set before the Pod is created and cleared once it is gone: while set and past, the
    # next reconcile looks for the Pod (by label) and deletes it.
    pod_delete_after = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"pull test of {self.target}: {self.result}"

    @property
    def testing(self) -> bool:
        """Still going: its run is queued or running (a dead run's recovery ends this)."""
        return self.result == self.Result.TESTING and self.run is not None and not self.run.finished
