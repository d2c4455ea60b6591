"""Chart sources, what was indexed from them, and the record of every sync run.

A :class:`ChartSource` is one place charts come from: a classic Helm repository, or one
repository inside an OCI registry marked "Use as chart repository". Sync runs fill
:class:`Chart` and :class:`ChartVersion`; the Chart Store reads only those tables.
"""

from __future__ import annotations

import shlex
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from charts.helmrepo import ARCHIVE_HOSTS_LABEL, HelmEndpoint, parse_host
from charts.semver import is_prerelease
from config import http
from config.connections import ConnectionSettings
from config.crypto import EncryptedTextField
from config.runs import Leased, Run
from registries.models import NAME_RULE, Registry
from registries.providers import split_url


def normalise_helm_url(value: str) -> str:
    """A Helm repository URL: trimmed, without a trailing ``/index.yaml`` or slash; only
    http(s), no credentials (they have their own, encrypted, field), no query or fragment."""
    url = (value or "").strip().rstrip("/")
    url = url.removesuffix("/index.yaml").rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 address
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(
            "Enter the repository's http:// or https:// URL, e.g. "
            "https://charts.example.com/stable (the folder that holds index.yaml)."
        )
    if parts.username or parts.password:
        raise ValidationError(
            "Do not put credentials in the URL: make the repository private and use the "
            "username and password fields."
        )
    if parts.query or parts.fragment:
        raise ValidationError("The URL cannot have a ?query or #fragment.")
    return url


def validate_archive_hosts(value: str) -> None:
    """One ``host`` or ``host:port`` per line (blank lines are fine)."""
    problems = []
    for line in (value or "").splitlines():
        if line.strip():
            try:
                parse_host(line)
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        raise ValidationError(problems)


def archive_host_lines(value: str) -> tuple[str, ...]:
    return tuple(line.strip().lower() for line in (value or "").splitlines() if line.strip())


class HelmRepository(ConnectionSettings):
    """A classic Helm chart repository: an ``index.yaml`` served over HTTP(S).

    Reached like a registry (``ConnectionSettings``): directly, via a proxy or through an
    SSH tunnel, with the same TLS modes.
    """

    class Access(models.TextChoices):
        PUBLIC = "public", "Public (no credentials)"
        PRIVATE = "private", "Private (username and password)"

    name = models.CharField(max_length=30, unique=True, validators=[NAME_RULE])
    url = models.CharField("Repository URL", max_length=500)
    access = models.CharField(max_length=10, choices=Access.choices, default=Access.PUBLIC)
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(blank=True)
    # connection_method, proxy_*, ssh_*, tls_mode, ca_certificate: ConnectionSettings.
    archive_hosts = models.TextField(
        ARCHIVE_HOSTS_LABEL,
        blank=True,
        validators=[validate_archive_hosts],
        help_text="Chart archives named by index.yaml are downloaded only from the "
        "repository's own host, and from these: one host or host:port per line (a host "
        "alone means ports 80 and 443), e.g. a release CDN.",
    )
    active = models.BooleanField(
        default=True, help_text="Inactive repositories are not synced and hidden from the store."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_secret_fields = ("password", *ConnectionSettings.connection_secret_fields)
    connection_target = "repository"

    class Meta:
        ordering = ["name"]
        verbose_name = "Helm repository"
        verbose_name_plural = "Helm repositories"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<HelmRepository {self.name} {self.url}>"

    def get_absolute_url(self) -> str:
        return reverse("charts:helmrepository_edit", args=[self.pk])

    @property
    def is_private(self) -> bool:
        return self.access == self.Access.PRIVATE

    def clean(self) -> None:
        """Normalise and check the URL (the folder that holds ``index.yaml``) and the
        credentials, wherever the repository is saved from. A stored password counts."""
        errors: dict[str, list[str]] = {}
        try:
            self.url = normalise_helm_url(self.url)
        except ValidationError as exc:
            errors["url"] = exc.messages
        else:
            if self.url.startswith("http://") and self.tls_mode != http.TLS_INSECURE:
                errors["url"] = [
                    "This URL is plain http://: choose “Allow insecure connection”, or use "
                    "https://."
                ]
        if self.is_private:
            self.username = (self.username or "").strip()
            if not self.username:
                errors["username"] = ["A private repository needs a username."]
            if not self.password:
                errors["password"] = ["A private repository needs a password."]
        else:
            self.username, self.password = "", ""
        try:
            super().clean()  # rules shared through base classes (how the repository is reached)
        except ValidationError as exc:
            exc.update_error_dict(errors)  # type: ignore[arg-type]  # messages are plain text
        if errors:
            raise ValidationError(errors)

    def endpoint(self) -> HelmEndpoint:
        """How to reach this repository: the one input ``charts.helmrepo`` needs."""
        return HelmEndpoint(
            url=self.url,
            username=self.username if self.is_private else "",
            password=self.password if self.is_private else "",
            transport=self.transport(),
            archive_hosts=archive_host_lines(self.archive_hosts),
        )


class ChartSourceQuerySet(models.QuerySet):
    def active(self):
        return self.filter(
            Q(kind=ChartSource.Kind.HELM, helm_repository__active=True)
            | Q(kind=ChartSource.Kind.OCI, registry__chart_source=True, vanished_at__isnull=True)
        )


class ChartSource(Leased):
    """Where charts come from; also the sync lease and the conditional-GET state."""

    class Kind(models.TextChoices):
        HELM = "helm", "Helm repository"
        OCI = "oci", "OCI registry"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    helm_repository = models.OneToOneField(
        HelmRepository, null=True, blank=True, on_delete=models.CASCADE, related_name="source"
    )
    registry = models.ForeignKey(
        Registry, null=True, blank=True, on_delete=models.CASCADE, related_name="chart_sources"
    )
    repository = models.CharField(max_length=255, blank=True)
    # OCI, "All repositories": found by listing the registry; gone from its listing since
    # (its charts are marked removed upstream, and it is not synced until it is back).
    discovered = models.BooleanField(default=False)
    vanished_at = models.DateTimeField(null=True, blank=True)

    # Helm: what the last successful fetch of index.yaml saw, for a conditional GET.
    etag = models.CharField(max_length=255, blank=True)
    last_modified = models.CharField(max_length=64, blank=True)
    content_digest = models.CharField(max_length=80, blank=True)
    # OCI: tags that are not charts (container images…), tag -> manifest digest, so that a
    # resync does not read their manifests again.
    ignored_tags = models.JSONField(default=dict, blank=True)

    last_run = models.ForeignKey(
        "SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Hide from the Chart Store the versions whose signature no configured key verified.
    verified_only = models.BooleanField(
        "Show only verified versions",
        default=False,
        help_text="The Chart Store shows only the versions of this source whose signature "
        "(Helm provenance or cosign) a configured signing key verified.",
    )
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_deep_sync_at = models.DateTimeField(null=True, blank=True)
    retry_not_before = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChartSourceQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["registry", "repository"],
                condition=Q(registry__isnull=False),
                name="one_source_per_registry_repository",
            ),
            models.CheckConstraint(
                condition=Q(kind="helm", helm_repository__isnull=False, registry__isnull=True)
                | Q(kind="oci", registry__isnull=False, helm_repository__isnull=True),
                name="chart_source_kind_matches_origin",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<ChartSource {self.kind} {self.name}>"

    def get_absolute_url(self) -> str:
        return reverse("charts:chartsource_detail", args=[self.pk])

    @property
    def is_oci(self) -> bool:
        return self.kind == self.Kind.OCI

    # The database's check constraint gives each kind its origin; these say so to the types.
    @property
    def oci_registry(self) -> Registry:
        """The registry an OCI source reads (present: ``chart_source_kind_matches_origin``)."""
        assert self.registry is not None, f"source {self.pk} is OCI but has no registry"
        return self.registry

    @property
    def helm(self) -> HelmRepository:
        """The Helm repository a Helm source reads (present, by the same constraint)."""
        assert self.helm_repository is not None, f"source {self.pk} is Helm but has no repository"
        return self.helm_repository

    @property
    def name(self) -> str:
        if self.is_oci:
            return f"{self.oci_registry.name}/{self.repository}"
        return self.helm.name

    @property
    def location(self) -> str:
        """Where it is, as a user would type it."""
        if self.is_oci:
            return f"oci://{self.oci_registry.url}/{self.repository}"
        return self.helm.url

    @property
    def api_repository(self) -> str:
        """The repository name in the registry API: the URL's path prefix, then the repository."""
        prefix = split_url(self.oci_registry.url)[1]
        return "/".join(part for part in (prefix.strip("/"), self.repository) if part)

    @property
    def is_active(self) -> bool:
        if self.is_oci:
            return self.oci_registry.chart_source and self.vanished_at is None
        return self.helm.active

    @property
    def own_host(self) -> str:
        """The host (and port) the source is read from: the only one its icons may come from."""
        if self.is_oci:
            return split_url(self.oci_registry.url)[0]
        return urlsplit(self.helm.url).netloc


class SyncRun(Run):
    """One sync of one source, written as the work goes so the page can show progress."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Sync now"
        CHANGE = "change", "Source changed"
        PUSH = "push", "Chart pushed"

    task_name = "charts.tasks.sync_chart_source"
    kind = "chart sync"
    time_limit_setting = "WHARF_SYNC_TIME_LIMIT"
    subject_field = "source"

    source = models.ForeignKey(ChartSource, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    deep = models.BooleanField(
        default=False, help_text="Also re-checks the tags that are not charts."
    )
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    indexed = models.PositiveIntegerField(default=0, help_text="Versions indexed so far.")
    http_requests = models.PositiveIntegerField(default=0)
    warnings = models.TextField(
        blank=True, help_text="Entries skipped one by one (the rest was indexed)."
    )
    # OCI: tags not read because they are not Helm charts (their config media type is
    # not Helm's) or were refused by an earlier run; the first ones by name, and how many.
    skipped_tags = models.JSONField(default=list, blank=True)
    skipped_count = models.PositiveIntegerField(default=0)
    # A run held back by its registry's rate limit waits, queued, until then (and says why).
    not_before = models.DateTimeField(null=True, blank=True)
    wait_reason = models.TextField(blank=True)

    holds_back = True  # config.runs: a queued run with not_before ahead is not started

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["source", "status"])]

    def __str__(self) -> str:
        return f"{self.source_id} {self.status} {self.queued_at:%Y-%m-%d %H:%M}"

    @property
    def waiting_for_budget(self) -> bool:
        """Queued, but held back until its registry's rate limit allows more."""
        return (
            self.status == self.Status.QUEUED
            and self.not_before is not None
            and self.not_before > timezone.now()
        )

    @property
    def skipped_not_named(self) -> int:
        """Skipped tags beyond the ones kept by name."""
        return max(self.skipped_count - len(self.skipped_tags or []), 0)


class TrustStatus(models.TextChoices):
    """Whether a chart version is signed, and whether a configured key verified it."""

    PENDING = "", "Not checked yet"
    VERIFIED = "verified", "Verified"
    SIGNED_UNVERIFIED = "signed-unverified", "Signed, not verified"
    UNSIGNED = "unsigned", "Unsigned"
    FAILED = "failed", "Verification failed"


class Discovery(Leased):
    """A registry indexed for "All repositories the registry holds": its listings' lease
    and what they remembered. One per such registry."""

    registry = models.OneToOneField(Registry, on_delete=models.CASCADE, related_name="discovery")
    last_run = models.ForeignKey(
        "DiscoveryRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"discovery of {self.registry.name}"


class SkippedRepository(models.Model):
    """A listed repository whose tags hold no Helm chart: looked at again only once its
    tag list changes (``tags_digest``, of the sorted tags)."""

    discovery = models.ForeignKey(
        Discovery, on_delete=models.CASCADE, related_name="skipped_repositories"
    )
    repository = models.CharField(max_length=255)
    tags_digest = models.CharField(max_length=80)
    reason = models.CharField(max_length=255)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["repository"]
        constraints = [
            models.UniqueConstraint(
                fields=["discovery", "repository"], name="one_skipped_row_per_repository"
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository}: {self.reason}"


class DiscoveryRun(Run):
    """One listing of a registry: what it found, indexed and skipped (and why)."""

    task_name = "charts.tasks.discover_registry_charts"
    kind = "repository discovery"
    time_limit_setting = "WHARF_SYNC_TIME_LIMIT"
    subject_field = "discovery"

    discovery = models.ForeignKey(Discovery, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(
        max_length=10, choices=SyncRun.Trigger.choices, default=SyncRun.Trigger.SCHEDULE
    )
    method = models.CharField(max_length=20, blank=True, help_text="How the registry was listed.")
    discovered = models.PositiveIntegerField(
        default=0, help_text="Repositories listed under the URL's path and prefixes."
    )
    indexed = models.PositiveIntegerField(default=0, help_text="Repositories holding charts.")
    added = models.PositiveIntegerField(default=0, help_text="New chart sources.")
    vanished = models.PositiveIntegerField(default=0, help_text="Sources gone from the listing.")
    skipped = models.PositiveIntegerField(default=0)
    # [{"repository", "reason"}], the first ones by name (the count is kept whole).
    skipped_repositories = models.JSONField(default=list, blank=True)
    http_requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-queued_at", "-id"]

    def __str__(self) -> str:
        return f"discovery {self.discovery_id} {self.status}"


class ChartQuerySet(models.QuerySet):
    def in_store(self):
        """Charts a user can see: from an active source, with a version not removed upstream."""
        active = ChartSource.objects.active().values("pk")
        return self.filter(source__in=active).exclude(latest_version="")


class Chart(models.Model):
    """A chart in one source; the latest release's fields are copied here for the store."""

    source = models.ForeignKey(ChartSource, on_delete=models.CASCADE, related_name="charts")
    name = models.CharField(max_length=255)
    latest_version = models.CharField(max_length=255, blank=True)
    app_version = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    icon = models.CharField(max_length=1000, blank=True)
    keywords = models.TextField(blank=True, help_text="Space-separated, for search.")
    # The latest version's content warning (ChartVersion.content_warning), for its card.
    latest_warning = models.TextField(blank=True)
    # The latest version's trust status (ChartVersion.trust_status), for its card and the
    # store's "verified only" filter.
    latest_trust = models.CharField(
        max_length=20, choices=TrustStatus.choices, blank=True, db_index=True
    )
    version_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ChartQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "name"], name="one_chart_name_per_source")
        ]
        indexes = [
            # The store's order and keyset paging (charts/search.py), and its exact-name
            # search; the search indexes proper are in migration 0012 (per database).
            models.Index(fields=["name", "id"], name="chart_name_id"),
            models.Index(Lower("name"), name="chart_lower_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("charts:chart_detail", args=[self.pk])

    @property
    def is_prerelease(self) -> bool:
        """Whether the version the store shows is a pre-release (it has no release yet)."""
        return is_prerelease(self.latest_version)

    def display_icon(self, icon: str | None = None) -> str:
        """The icon URL if the browser may load it, else "".

        No page may load anything from the internet (Wharf runs air-gapped), so only an
        inline ``data:image/…`` icon or one served by the chart's own source host is shown.
        """
        icon = (self.icon if icon is None else icon).strip()
        if icon.startswith("data:image/") and len(icon) <= 100_000:
            return icon
        parts = urlsplit(icon)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return ""
        return icon if parts.netloc == self.source.own_host else ""


class ChartVersionQuerySet(models.QuerySet):
    def in_store(self):
        """Versions a user can see: of a store chart, still upstream, and verified when their
        source shows only verified versions (``ChartSource.verified_only``)."""
        hidden = models.Q(chart__source__verified_only=True) & ~models.Q(
            trust_status=TrustStatus.VERIFIED
        )
        return self.filter(
            chart__in=Chart.objects.in_store(), removed_upstream_at__isnull=True
        ).exclude(hidden)


class ChartVersion(models.Model):
    """One version of a chart as the source described it."""

    chart = models.ForeignKey(Chart, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=255)
    prerelease = models.BooleanField(default=False)
    app_version = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    icon = models.CharField(max_length=1000, blank=True)
    keywords = models.TextField(blank=True)
    metadata = models.JSONField(
        default=dict, encoder=DjangoJSONEncoder, help_text="Chart.yaml fields as the source gave."
    )
    # What identifies the content: the OCI manifest digest, or the Helm index entry's digest
    # plus a fingerprint of its metadata; a change means the version was overwritten.
    fingerprint = models.CharField(max_length=100)
    digest = models.CharField(max_length=100, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    archive_url = models.CharField(max_length=1000, blank=True)
    archive_digest = models.CharField(max_length=100, blank=True)
    archive_size = models.BigIntegerField(null=True, blank=True)
    created = models.CharField(max_length=64, blank=True, help_text="When the chart was packaged.")
    removed_upstream_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    # values.yaml, values.schema.json and README, read from the archive in the background
    # (charts/files.py), never in a page view, and kept.
    files_read_at = models.DateTimeField(null=True, blank=True)
    values_yaml = models.TextField(blank=True)
    readme = models.TextField(blank=True)
    values_schema = models.TextField(blank=True, help_text="values.schema.json, as written.")
    files_error = models.TextField(blank=True)
    # Set when the archive is read: its own Chart.yaml names another chart or version
    # than the source said (the values and README shown are the archive's).
    content_warning = models.TextField(blank=True)
    files_attempts = models.PositiveSmallIntegerField(default=0)
    files_next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Asked for from the chart page ("Read now"): read before the rest.
    files_requested_at = models.DateTimeField(null=True, blank=True)
    # One worker reads a version at a time: a claim, not a flag, so a dead one lets go.
    files_claimed_until = models.DateTimeField(null=True, blank=True)

    # Its signature, checked in the background (trust/check.py) after indexing and when
    # signing keys change, never in a page view. Pending while trust_checked_at is empty.
    trust_status = models.CharField(
        max_length=20, choices=TrustStatus.choices, blank=True, default=TrustStatus.PENDING
    )
    trust_detail = models.TextField(blank=True, help_text="Which key, or why not.")
    trust_method = models.CharField(max_length=20, blank=True, help_text="provenance or cosign")
    # The key id the signature names (OpenPGP long id), to re-check only the versions a
    # key added or removed concerns.
    trust_signer = models.CharField(max_length=64, blank=True, db_index=True)
    trust_key = models.CharField(max_length=60, blank=True, help_text="The verifying key's name.")
    # The signature material read from the source (provenance text, cosign payloads), so
    # a change of keys re-judges without reading the source again.
    trust_evidence = models.JSONField(default=dict, blank=True)
    trust_checked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # After the source could not be read: when to try again.
    trust_retry_at = models.DateTimeField(null=True, blank=True)

    objects = ChartVersionQuerySet.as_manager()

    class Meta:
        ordering = ["chart", "id"]
        constraints = [
            models.UniqueConstraint(fields=["chart", "version"], name="one_row_per_chart_version")
        ]

    def __str__(self) -> str:
        return f"{self.chart.name} {self.version}"

    @property
    def files_state(self) -> str:
        """ "read", "reading" (waiting for a worker), "retry" (after a failure), or "failed"."""
        from charts.files import MAX_ATTEMPTS

        if self.files_read_at is not None:
            return "read"
        if self.files_attempts >= MAX_ATTEMPTS:
            return "failed"
        return "retry" if self.files_attempts else "reading"


class ChartPush(Run):
    """One chart archive pushed (or being pushed) to a registry as a Helm OCI artifact.

    The uploaded bytes live on the row until the push has finished (the web process and
    the worker share the database, not necessarily a disk), then they are cleared.
    """

    task_name = "charts.tasks.push_chart"
    kind = "chart push"
    time_limit_setting = "WHARF_PUSH_TIME_LIMIT"
    dead_message = (
        "The worker stopped before this push finished (no heartbeat since {last}); "
        "push the chart again."
    )

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="chart_pushes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept beside the foreign key so the row still says who after the user is gone.
    username = models.CharField(max_length=150, blank=True)
    chart_name = models.CharField(max_length=255)
    version = models.CharField(max_length=255)
    repository = models.CharField(
        max_length=255, help_text="Prefix and chart name, under the registry URL."
    )
    tag = models.CharField(max_length=255)
    overwrite = models.BooleanField(default=False)
    note = models.CharField(max_length=255, blank=True, help_text="What the push did.")
    manifest_digest = models.CharField(max_length=100, blank=True)
    archive_digest = models.CharField(max_length=100)
    archive_size = models.BigIntegerField()
    has_provenance = models.BooleanField(default=False)
    archive = models.BinaryField(blank=True, default=b"", editable=False)
    provenance = models.BinaryField(blank=True, default=b"", editable=False)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["registry", "status"])]

    def __str__(self) -> str:
        return f"{self.chart_name} {self.version} to {self.registry.name}/{self.repository}"

    def __repr__(self) -> str:
        return f"<ChartPush {self.pk} {self.repository}:{self.tag} {self.status}>"

    @classmethod
    def dead_fields(cls) -> dict:
        return {"archive": b"", "provenance": b""}  # a failed push is retried by uploading

    @property
    def reference(self) -> str:
        """``oci://<registry url>/<repository>``, as Helm names the chart."""
        return f"oci://{self.registry.url.rstrip('/')}/{self.repository}"

    @property
    def helm_pull(self) -> str:
        return f"helm pull {shlex.quote(self.reference)} --version {shlex.quote(self.version)}"
