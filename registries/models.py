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
from registries import oci
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


class RegistryQuerySet(models.QuerySet):
    def chart_sources(self):
        return self.filter(chart_source=True)


class Registry(ConnectionSettings):
    class Type(models.TextChoices):
        PRIVATE = "private", "Private Registry"
        PUBLIC = "public", "Public Registry"

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
    repositories = models.JSONField("List of repositories", default=list, blank=True)
    is_default = models.BooleanField("Default registry", default=False)

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
        return reverse("registries:edit", args=[self.pk])

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

    def ecr_token(self) -> EcrToken:
        """A fresh ECR authorization token for this registry's account and region.

        Raises :class:`~registries.oci.RegistryError` ("AWS did not issue an ECR token: …"),
        the one error type of reaching a registry, so no caller special-cases AWS.
        """
        from registries.aws import AwsError, ecr_authorization_token

        use_keys = self.auth_type == AUTH_ACCESS_KEY
        # Through the registry's proxy when it has one. An SSH tunnel carries only the registry
        # API: the AWS API call goes direct (AWS endpoints are public, the registry may not be).
        proxy = self.connection_method == self.ConnectionMethod.PROXY
        try:
            return ecr_authorization_token(
                region=self.ecr_region,
                registry_id=self.ecr_account,
                access_key_id=self.username if use_keys else "",
                secret_access_key=self.secret if use_keys else "",
                endpoint_url=settings.WHARF_AWS_ENDPOINT_URL,
                timeout=settings.WHARF_REGISTRY_TIMEOUT,
                proxy_url=self.proxy_url if proxy else "",
                proxy_username=self.proxy_username if proxy else "",
                proxy_password=self.proxy_password if proxy else "",
            )
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
