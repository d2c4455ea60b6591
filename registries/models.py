"""Container/OCI registries: where images and charts live, and how to reach them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse

from config.connections import ConnectionSettings
from config.crypto import EncryptedTextField
from registries import budgets, oci
from registries.providers import (
    AUTH_ACCESS_KEY,
    AUTH_LABELS,
    PROVIDER_CHOICES,
    EcrProvider,
    Provider,
    get_provider,
    split_url,
)

if TYPE_CHECKING:
    from registries.aws import EcrToken

NAME_RULE = RegexValidator(
    r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$",
    "Use 3–30 characters: lowercase letters, digits and -, starting with a letter and "
    "ending with a letter or digit (no spaces or /).",
)

# A repository path inside a registry, as the distribution spec's name grammar allows.
REPOSITORY_PATH = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


REPOSITORIES_MESSAGE = (
    "Not a repository path: %(bad)s. Use lowercase letters, digits, ., _, - and / "
    "(for example charts/stable)."
)


def normalise_repositories(value) -> tuple[list[str], list[str]]:
    """Repository paths trimmed (blanks, and slashes around them), without repeats; and the
    items that are not repository paths."""
    repos: list[str] = []
    bad: list[str] = []
    for item in value:
        path = item.strip().strip("/") if isinstance(item, str) else item
        if path == "":
            continue
        if not isinstance(path, str) or not REPOSITORY_PATH.match(path):
            bad.append(str(path))
        elif path not in repos:
            repos.append(path)
    return repos, bad


class RegistryQuerySet(models.QuerySet):
    def chart_sources(self):
        return self.filter(chart_source=True)


class RepositoryScope(models.TextChoices):
    LIST = "list", "List of repositories"
    ALL = "all", "All repositories the registry holds"


class Registry(ConnectionSettings):
    class Type(models.TextChoices):
        PRIVATE = "private", "Private Registry"
        PUBLIC = "public", "Public Registry"

    Scope = RepositoryScope

    name = models.CharField(max_length=30, unique=True, validators=[NAME_RULE])
    provider = models.CharField("Registry provider", max_length=20, choices=PROVIDER_CHOICES)
    registry_type = models.CharField(
        "Registry type", max_length=10, choices=Type.choices, default=Type.PRIVATE
    )
    url = models.CharField("Registry URL", max_length=255)
    auth_type = models.CharField(
        "Authentication type", max_length=20, choices=list(AUTH_LABELS.items()), blank=True
    )
    username = models.CharField(max_length=255, blank=True)
    secret = EncryptedTextField(blank=True)

    # connection_method, proxy_*, ssh_*, tls_mode, ca_certificate: ConnectionSettings.

    push_images = models.BooleanField("Push container images", default=True)
    push_helm = models.BooleanField("Push helm packages", default=False)
    chart_source = models.BooleanField("Use as chart repository", default=False)
    repository_scope = models.CharField(
        "Repositories to index",
        max_length=10,
        choices=RepositoryScope.choices,
        default=RepositoryScope.LIST,
    )
    repositories = models.JSONField("List of repositories", default=list, blank=True)
    repository_prefixes = models.JSONField(
        "Path prefixes",
        default=list,
        blank=True,
        help_text="Only the repositories under these paths (all of them when empty).",
    )
    is_default = models.BooleanField("Default registry", default=False)
    # Learned, not entered: this registry answered over plain HTTP (with "Allow insecure
    # connection"), so clients go straight to http:// instead of probing https:// first.
    # Set by Test connection and syncs (remember_plain_http), dropped when the route changes.
    plain_http = models.BooleanField("Speaks plain HTTP", default=False, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RegistryQuerySet.as_manager()

    audit_secret_fields = ("secret", *ConnectionSettings.connection_secret_fields)
    connection_target = "registry"

    class Meta:
        ordering = ["name"]
        verbose_name = "registry"
        verbose_name_plural = "registries"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="one_default_registry",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Registry {self.name} {self.provider} {self.url}>"

    def get_absolute_url(self) -> str:
        return reverse("registries:registry_edit", args=[self.pk])

    # --- the plain-HTTP route, learned ---------------------------------------------
    # The route the stored plain_http flag was learned on (None: not read from the database).
    _plain_http_route: tuple | None = None

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        if "url" in instance.__dict__ and "tls_mode" in instance.__dict__:
            instance._plain_http_route = instance.route_key()
        return instance

    def route_key(self) -> tuple:
        """What the plain_http flag holds for: the URL and how it is reached."""
        return (
            self.url,
            self.tls_mode,
            self.connection_method,
            self.proxy_url,
            self.ssh_host,
            self.ssh_port,
        )

    def remember_plain_http(self, plain_http: bool | None) -> None:
        """Store what a client learned (:attr:`registries.oci.RegistryClient.speaks_plain_http`):
        on this instance, and on the stored row while it still names the same route, written
        only when it changes (so a sync adds no write once it is known)."""
        if plain_http is None:
            return
        self.plain_http = plain_http
        self._plain_http_route = self.route_key()
        if self.pk is None:
            return  # an unsaved registry keeps it until it is saved
        url, tls_mode, method, proxy_url, ssh_host, ssh_port = self.route_key()
        Registry.objects.filter(
            pk=self.pk,
            url=url,
            tls_mode=tls_mode,
            connection_method=method,
            proxy_url=proxy_url,
            ssh_host=ssh_host,
            ssh_port=ssh_port,
        ).exclude(plain_http=plain_http).update(plain_http=plain_http)

    def save(self, *args, **kwargs):
        if self.plain_http and self._plain_http_route not in (None, self.route_key()):
            self.plain_http = False  # learned on another URL or route: learn it again
        super().save(*args, **kwargs)

    # --- rules -------------------------------------------------------------------
    # Every way of saving a registry (Wharf's form, the admin, a command, a later API) runs
    # full_clean(), so these rules hold for all of them; forms add only what is about their
    # inputs (a blank secret kept on an edit, an uploaded key file).

    def clean(self) -> None:
        """Normalise and check this registry as its provider says: URL, what it may be used
        for, its chart repositories, its credentials and the default flag.

        Raises ``ValidationError({field: [messages]})`` with every problem found.
        """
        errors: dict[str, list] = {}

        def add(field: str, message: str, params: dict | None = None) -> None:
            errors.setdefault(field, []).append(ValidationError(message, params=params))

        provider = self.provider_spec
        public = self.is_public and provider.is_oci
        try:
            provider.clean_capabilities(
                public=self.is_public, push_helm=self.push_helm, chart_source=self.chart_source
            )
        except ValidationError as exc:
            exc.update_error_dict(errors)
        if not provider.is_oci:
            self.push_helm = self.chart_source = False

        try:
            self.url = provider.clean_url(self.url, public=public)
        except ValidationError as exc:
            add("url", exc.messages[0])

        if not (self.push_images or self.push_helm or self.chart_source):
            add(
                "push_images",
                "Tick at least one of Push container images, Push helm packages and "
                "Use as chart repository.",
            )
        self._clean_repositories(add)
        self._clean_credentials(public, errors)
        self._clean_default(add)

        try:
            super().clean()  # rules shared through base classes (how the registry is reached)
        except ValidationError as exc:
            exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_repositories(self, add) -> None:
        if self.repository_scope not in RepositoryScope.values:
            self.repository_scope = RepositoryScope.LIST
        listing_all = self.chart_source and self.repository_scope == RepositoryScope.ALL
        if listing_all and not self.provider_spec.lists_repositories:
            add("repository_scope", self.provider_spec.listing_refusal())
            listing_all = False
        if not isinstance(self.repositories, list):
            add("repositories", 'Enter a list of repository paths, for example ["charts/stable"].')
            return
        repositories, bad = normalise_repositories(self.repositories)
        if bad:
            add("repositories", REPOSITORIES_MESSAGE, {"bad": ", ".join(bad)})
            return
        if self.chart_source and not listing_all and not repositories:
            add("repositories", "List at least one repository that holds Helm charts.")
        # Listing them all keeps the hand-written list, for going back to it.
        self.repositories = repositories if self.chart_source else []
        if not isinstance(self.repository_prefixes, list):
            add("repository_prefixes", 'Enter a list of path prefixes, for example ["charts"].')
            return
        prefixes, bad = normalise_repositories(self.repository_prefixes)
        if bad:
            add("repository_prefixes", REPOSITORIES_MESSAGE, {"bad": ", ".join(bad)})
            return
        self.repository_prefixes = prefixes if listing_all else []
        if not self.chart_source:
            self.repository_scope = RepositoryScope.LIST

    def _clean_credentials(self, public: bool, errors: dict) -> None:
        if public:  # a public registry has no credentials (and injects none)
            self.auth_type, self.username, self.secret = "", "", ""
            return
        provider = self.provider_spec
        try:
            self.auth_type = provider.clean_auth_type(self.auth_type)
        except ValidationError as exc:
            exc.update_error_dict(errors)
            return
        self.username = (self.username or "").strip()
        if not provider.uses_username(self.auth_type):
            self.username = ""
        if not provider.uses_secret(self.auth_type):
            self.secret = ""
        try:
            # The stored secret counts: an edit that leaves it blank keeps it.
            provider.clean_credentials(self.auth_type, self.username, self.secret or "")
        except ValidationError as exc:
            exc.update_error_dict(errors)

    def _clean_default(self, add) -> None:
        # The default moves by making another registry the default, never by unticking it.
        if self.pk is None or self.is_default:
            return
        if not Registry.objects.filter(pk=self.pk, is_default=True).exists():
            return
        if Registry.objects.exclude(pk=self.pk).exists():
            add(
                "is_default",
                "This is the default registry: make another registry the default instead "
                "of unticking it here.",
            )
        else:
            self.is_default = True  # the only registry stays the default

    # --- derived -------------------------------------------------------------

    @property
    def provider_spec(self) -> Provider:
        """What this registry's provider asks and allows (``provider`` is only its key)."""
        return get_provider(self.provider)

    @property
    def is_public(self) -> bool:
        return self.registry_type == self.Type.PUBLIC

    @property
    def ecr_region(self) -> str:
        return EcrProvider.account_and_region(self.url)[1]

    @property
    def ecr_account(self) -> str:
        return EcrProvider.account_and_region(self.url)[0]

    def aws_access(self) -> dict:
        """How to call the AWS API for this ECR registry: region, keys, endpoint, proxy
        (keyword arguments of the functions in :mod:`registries.aws`)."""
        use_keys = self.auth_type == AUTH_ACCESS_KEY
        # Through the registry's proxy when it has one. An SSH tunnel carries only the registry
        # API: the AWS API call goes direct (AWS endpoints are public, the registry may not be).
        proxy = self.connection_method == self.ConnectionMethod.PROXY
        return {
            "region": self.ecr_region,
            "access_key_id": self.username if use_keys else "",
            "secret_access_key": self.secret if use_keys else "",
            "endpoint_url": settings.WHARF_AWS_ENDPOINT_URL,
            "timeout": settings.WHARF_REGISTRY_TIMEOUT,
            "proxy_url": self.proxy_url if proxy else "",
            "proxy_username": self.proxy_username if proxy else "",
            "proxy_password": self.proxy_password if proxy else "",
        }

    @property
    def lists_all_repositories(self) -> bool:
        """A chart source of every repository the registry lists (under its prefixes)."""
        return self.chart_source and self.repository_scope == RepositoryScope.ALL

    def ecr_token(self) -> EcrToken:
        """A fresh ECR authorization token for this registry's account and region.

        Raises :class:`~registries.oci.RegistryError` ("AWS did not issue an ECR token: …"),
        the one error type of reaching a registry, so no caller special-cases AWS.
        """
        from registries.aws import AwsError, ecr_authorization_token

        try:
            return ecr_authorization_token(registry_id=self.ecr_account, **self.aws_access())
        except AwsError as exc:
            raise oci.RegistryError(
                f"AWS did not issue an ECR token: {exc}",
                kind=oci.RegistryError.UNREACHABLE if exc.unreachable else oci.RegistryError.AUTH,
                host=split_url(self.url)[0],
            ) from None

    def connection(self) -> oci.Connection:
        """How to reach this registry's API: the one input ``registries.oci`` needs.

        For ECR this asks AWS for a token first: a failure is a ``RegistryError`` too.
        """
        login = self.provider_spec.login(self)
        return oci.Connection(
            host=login.api_host,
            username=login.username,
            password=login.password,
            transport=self.transport(),
            on_rate_limit=budgets.recorder(self.pk, oci.Connection(login.api_host).api_host),
            plain_http=self.plain_http,
        )

    # --- default registry ------------------------------------------------------

    def make_default(self) -> None:
        """Make this the one default registry, clearing the flag on any other."""
        with transaction.atomic():
            Registry.objects.filter(is_default=True).exclude(pk=self.pk).update(is_default=False)
            Registry.objects.filter(pk=self.pk).update(is_default=True)
        self.is_default = True

    def deletion_blocker(self) -> str:
        """Why this registry cannot be deleted now, or an empty string."""
        if self.is_default and Registry.objects.exclude(pk=self.pk).exists():
            return (
                f"{self.name} is the default registry. Make another registry the default "
                "first, then delete this one."
            )
        return ""

    def delete(self, *args, **kwargs):
        blocker = self.deletion_blocker()
        if blocker:
            raise ValidationError(blocker)
        return super().delete(*args, **kwargs)


class RateLimitBudget(models.Model):
    """What a registry last said of its rate limit: how many requests are left, of how
    many, per what window, and when it resets (``registries.budgets`` keeps it).

    In the database, so that every worker, and the web, see the same budget (on SQLite as
    on PostgreSQL); written only when it changes.
    """

    registry = models.OneToOneField(
        Registry, on_delete=models.CASCADE, related_name="rate_limit_budget"
    )
    limit = models.PositiveIntegerField(null=True, blank=True)
    remaining = models.PositiveIntegerField(null=True, blank=True)
    window_seconds = models.PositiveIntegerField(null=True, blank=True)
    resets_at = models.DateTimeField(
        null=True, blank=True, help_text="When the registry said the window resets (or ends)."
    )
    throttled_until = models.DateTimeField(
        null=True, blank=True, help_text="Until when its last 429 asked Wharf to wait."
    )
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "rate-limit budget"

    def __str__(self) -> str:
        return f"{self.registry_id}: {self.remaining} of {self.limit}"

    @property
    def reserve(self) -> int:
        """Requests kept back: ``WHARF_RATE_LIMIT_RESERVE_PERCENT`` of the limit."""
        return budgets.reserve_of(self.limit)

    @property
    def state(self) -> budgets.BudgetState:
        return budgets.BudgetState(
            limit=self.limit,
            remaining=self.remaining,
            window_seconds=self.window_seconds,
            resets_at=self.resets_at,
            throttled_until=self.throttled_until,
            updated_at=self.updated_at,
        )

    @property
    def wait(self) -> budgets.Wait | None:
        """Whether the registry's syncs wait now, and until when (for its pages)."""
        return budgets.wait_needed(self.state)

    @property
    def window_text(self) -> str:
        return budgets.describe_window(self.window_seconds) if self.window_seconds else ""

    @property
    def used_percent(self) -> int | None:
        if not self.limit or self.remaining is None:
            return None
        return max(0, min(100, round(100 * (self.limit - self.remaining) / self.limit)))
