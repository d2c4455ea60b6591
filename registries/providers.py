"""Registry providers as data: one small class per provider.

A provider knows its label, which authentication types it offers and what its
credential fields are called, what its registry URL looks like, whether it is an
OCI registry, and how to turn a registry's stored settings into a login for the
registry API. The registry model's rules, forms, templates and tasks ask the provider;
nothing else branches on the provider's name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from registries.models import Registry

# Authentication types (stored in Registry.auth_type).
AUTH_IAM_ROLE = "iam-role"
AUTH_ACCESS_KEY = "access-key"
AUTH_PASSWORD = "password"
AUTH_JSON_KEY = "json-key"

# Registry types (stored in Registry.registry_type; the model's choices label them).
TYPE_PRIVATE = "private"
TYPE_PUBLIC = "public"

AUTH_LABELS = {
    AUTH_IAM_ROLE: "EC2 IAM Role",
    AUTH_ACCESS_KEY: "User Auth",
    AUTH_PASSWORD: "Username and password/token",
    AUTH_JSON_KEY: "Service account JSON key",
}

_SCHEME = re.compile(r"^\s*(oci|https?)://", re.IGNORECASE)
_HOST = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
_IPV6 = r"\[[0-9a-f:.]+\]"
_PATH = r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
_URL = re.compile(rf"^(?P<host>{_HOST}|{_IPV6})(?::(?P<port>[0-9]{{1,5}}))?(?P<path>{_PATH})$")

GCP_JSON_KEY_USER = "_json_key"

LISTING_REFUSED = (
    "This registry does not list its repositories to these credentials: give the list by hand."
)


@dataclass(frozen=True)
class Login:
    """What to send to the registry API: host, and basic credentials (maybe empty)."""

    api_host: str
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:  # never show the password
        return f"Login(api_host={self.api_host!r}, username={self.username!r})"


def normalise_url(value: str) -> str:
    """Trim and check ``host[:port][/path]``; reject a scheme with a clear message."""
    value = (value or "").strip()
    if not value:
        raise ValidationError("Enter the registry URL.")
    if _SCHEME.match(value):
        raise ValidationError(
            "Drop the scheme: enter the registry URL without oci://, http:// or https:// "
            "(for example registry.example.com:5000/team)."
        )
    value = value.rstrip("/")
    host, sep, path = value.partition("/")
    value = host.lower() + sep + path
    match = _URL.match(value)
    if not match:
        raise ValidationError(
            "Enter the registry URL as host[:port][/path]: letters, digits, dots and dashes "
            "in the host, a lowercase path, no spaces (for example registry.example.com:5000/team)."
        )
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValidationError("The port must be between 1 and 65535.")
    return value


def split_url(url: str) -> tuple[str, str]:
    """``host[:port]`` and the path prefix (without the leading slash) of a registry URL."""
    host, _, path = url.partition("/")
    return host, path


def json_key_text(raw: str) -> str:
    """A GCP service-account key as the registry expects it: without the quotes and
    blanks around it that :func:`parse_json_key` accepts."""
    text = (raw or "").strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1].strip()
    return text


def parse_json_key(raw: str) -> dict:
    """A GCP service-account key as pasted (maybe wrapped in single quotes) or uploaded."""
    text = json_key_text(raw)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(
            "The service account JSON key is not valid JSON: paste the whole key file "
            f"as downloaded ({exc.args[0].split(':')[0]})."
        ) from exc
    if not isinstance(data, dict) or not data.get("client_email"):
        raise ValidationError(
            "The service account JSON key has no client_email: is this a service account key file?"
        )
    return data


class Provider:
    key: ClassVar[str]
    label: ClassVar[str]
    auth_types: ClassVar[tuple[str, ...]] = (AUTH_PASSWORD,)
    username_label: ClassVar[str] = "Username"
    secret_label: ClassVar[str] = "Password/Token"
    default_url: ClassVar[str] = ""
    url_help: ClassVar[str] = "host[:port][/path], for example registry.example.com:5000"
    # GCR is a Docker registry, not an OCI one: no public, no Helm, no chart source.
    is_oci: ClassVar[bool] = True
    # "Advanced connection" TLS options: for Other always, for others when private.
    tls_options_when_public: ClassVar[bool] = False

    # Whether its registries list their repositories (GET /v2/_catalog, or the ECR API).
    lists_repositories: ClassVar[bool] = True

    # The registry host this provider accepts (a full-match pattern), and what to say otherwise.
    host_rule: ClassVar[re.Pattern | None] = None
    host_message: ClassVar[str] = ""

    def clean_url(self, url: str, *, public: bool) -> str:
        url = normalise_url(url or self.default_url)
        if self.host_rule and not self.host_rule.fullmatch(split_url(url)[0]):
            raise ValidationError(self.host_message)
        return url

    @property
    def registry_types(self) -> tuple[str, ...]:
        """The registry types (``Registry.Type`` values) it can be, the default first."""
        return (TYPE_PRIVATE, TYPE_PUBLIC) if self.is_oci else (TYPE_PRIVATE,)

    def charts_refusal(self) -> str:
        """Why this provider's registries cannot hold Helm charts, or an empty string."""
        if self.is_oci:
            return ""
        return f"{self.label} is not an OCI registry: it cannot store Helm charts."

    def listing_refusal(self) -> str:
        """What to say when the registry will not list its repositories."""
        return LISTING_REFUSED

    def clean_capabilities(self, *, public: bool, push_helm: bool, chart_source: bool) -> None:
        """Refuse what only an OCI registry can be or do (GCR is a Docker registry)."""
        if self.is_oci:
            return
        errors = {}
        if public:
            errors["registry_type"] = (
                f"{self.label} cannot be a public registry: it is not an OCI registry."
            )
        for name, ticked in (("push_helm", push_helm), ("chart_source", chart_source)):
            if ticked:
                errors[name] = self.charts_refusal()
        if errors:
            raise ValidationError(errors)

    def clean_auth_type(self, auth_type: str) -> str:
        """The authentication type a private registry stores: the provider's first by default."""
        if not auth_type:
            return self.auth_types[0]
        if auth_type not in self.auth_types:
            offered = " or ".join(AUTH_LABELS[key] for key in self.auth_types)
            raise ValidationError(
                {"auth_type": f"{self.label} does not offer this authentication: use {offered}."}
            )
        return auth_type

    def uses_username(self, auth_type: str) -> bool:
        return auth_type in (AUTH_PASSWORD, AUTH_ACCESS_KEY)

    def uses_secret(self, auth_type: str) -> bool:
        return auth_type != AUTH_IAM_ROLE

    def clean_credentials(self, auth_type: str, username: str, secret: str) -> None:
        """Check a private registry's credentials are complete; ``secret`` may be the stored one."""
        errors = {}
        if self.uses_username(auth_type) and not username:
            errors["username"] = f"Enter the {self.username_label.lower()}."
        if self.uses_secret(auth_type) and not secret:
            errors["secret"] = f"Enter the {self.secret_label.lower()}."
        if errors:
            raise ValidationError(errors)

    def api_host(self, registry: Registry) -> str:
        return split_url(registry.url)[0]

    def pull_secret_server(self, registry: Registry) -> str:
        """The server key of this registry in a docker config (an image pull secret)."""
        return split_url(registry.url)[0]

    def login(self, registry: Registry) -> Login:
        """Credentials for the registry API; ECR overrides this to fetch a token."""
        if registry.is_public:
            return Login(self.api_host(registry))
        return Login(self.api_host(registry), registry.username, registry.secret)


class EcrProvider(Provider):
    key = "ecr"
    label = "ECR"
    auth_types = (AUTH_IAM_ROLE, AUTH_ACCESS_KEY)
    username_label = "Access key ID"
    secret_label = "Secret access key"
    url_help = "<12-digit account ID>.dkr.ecr.<region>.amazonaws.com"
    PRIVATE_URL = re.compile(
        r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9])"
        r"\.amazonaws\.com(?:\.cn)?$"
    )
    PUBLIC_HOST = "public.ecr.aws"

    def clean_url(self, url: str, *, public: bool) -> str:
        url = normalise_url(url)
        if public and split_url(url)[0] == self.PUBLIC_HOST:
            return url
        if not self.PRIVATE_URL.match(url):
            raise ValidationError(
                "An ECR registry URL looks like 123456789012.dkr.ecr.us-east-1.amazonaws.com: "
                "your 12-digit AWS account ID, then .dkr.ecr., the region and .amazonaws.com"
                + (" (or public.ecr.aws for ECR Public)." if public else ".")
            )
        return url

    @classmethod
    def account_and_region(cls, url: str) -> tuple[str, str]:
        match = cls.PRIVATE_URL.match(split_url(url)[0])
        return (match.group("account"), match.group("region")) if match else ("", "")

    def login(self, registry: Registry) -> Login:
        if registry.is_public:
            return Login(self.api_host(registry))
        token = registry.ecr_token()
        return Login(
            token.proxy_endpoint.split("://", 1)[-1].rstrip("/"), token.username, token.password
        )


class DockerHubProvider(Provider):
    key = "docker-hub"
    label = "Docker Hub"
    default_url = "docker.io"
    url_help = "docker.io (optionally with your namespace: docker.io/myteam)"
    host_rule = re.compile(r"(?:index\.|registry-1\.)?docker\.io")
    host_message = "A Docker Hub registry URL is docker.io (optionally docker.io/namespace)."
    lists_repositories = False  # its /v2/_catalog is refused to every account

    def api_host(self, registry: Registry) -> str:
        # docker.io is the name people use; the registry API lives on registry-1.
        return "registry-1.docker.io"

    def pull_secret_server(self, registry: Registry) -> str:
        # The key docker and the kubelet look up for Docker Hub images.
        return "https://index.docker.io/v1/"


class AzureProvider(Provider):
    key = "acr"
    label = "Azure (ACR)"
    username_label = "Username/Registry name"
    secret_label = "Password"
    url_help = "<registry name>.azurecr.io"
    host_rule = re.compile(r"[a-z0-9]{5,50}\.azurecr\.io")
    host_message = "An Azure registry URL (login server) looks like myregistry.azurecr.io."


class _GoogleProvider(Provider):
    auth_types = (AUTH_JSON_KEY,)
    lists_repositories = False  # the Docker API's catalog answers no repositories
    username_label = "Username"
    secret_label = "Service Account JSON File"

    def uses_username(self, auth_type: str) -> bool:
        return False

    def clean_credentials(self, auth_type: str, username: str, secret: str) -> None:
        super().clean_credentials(auth_type, username, secret)
        try:
            parse_json_key(secret)
        except ValidationError as exc:
            raise ValidationError({"secret": exc.messages}) from exc

    def login(self, registry: Registry) -> Login:
        if registry.is_public:
            return Login(self.api_host(registry))
        return Login(self.api_host(registry), GCP_JSON_KEY_USER, json_key_text(registry.secret))


class ArtifactRegistryProvider(_GoogleProvider):
    key = "gcp-ar"
    label = "Artifact Registry (GCP)"
    url_help = "<region>-docker.pkg.dev (optionally with /project/repository)"
    host_rule = re.compile(r"[a-z]+(?:-[a-z]+)*[0-9]?-docker\.pkg\.dev")
    host_message = (
        "An Artifact Registry URL looks like europe-west1-docker.pkg.dev "
        "(optionally followed by /project/repository)."
    )


class GcrProvider(_GoogleProvider):
    key = "gcr"
    label = "Google Container Registry (GCR)"
    default_url = "gcr.io"
    url_help = "gcr.io, us.gcr.io, eu.gcr.io or asia.gcr.io (optionally with /project)"
    is_oci = False
    host_rule = re.compile(r"(?:us\.|eu\.|asia\.)?gcr\.io")
    host_message = "A GCR URL is gcr.io or a regional variant: us.gcr.io, eu.gcr.io, asia.gcr.io."


class QuayProvider(Provider):
    key = "quay"
    label = "Quay"
    secret_label = "Token"
    default_url = "quay.io"
    url_help = "quay.io, or your own Quay host"


class OtherProvider(Provider):
    key = "other"
    label = "Other"
    tls_options_when_public = True


PROVIDERS: dict[str, Provider] = {
    p.key: p()
    for p in (
        EcrProvider,
        DockerHubProvider,
        AzureProvider,
        ArtifactRegistryProvider,
        GcrProvider,
        QuayProvider,
        OtherProvider,
    )
}
PROVIDER_CHOICES = [(key, p.label) for key, p in PROVIDERS.items()]


def get_provider(key: str) -> Provider:
    return PROVIDERS.get(key, PROVIDERS["other"])
