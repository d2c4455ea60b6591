""" "Test connection": log in to a registry the way every later feature will."""

from __future__ import annotations

from dataclasses import dataclass, field

from registries import oci
from registries.listing import list_repositories
from registries.models import Registry
from registries.providers import EcrProvider


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    steps: list[str] = field(default_factory=list)


def check_connection(registry: Registry) -> ConnectionCheck:
    """Log in to ``registry`` (saved or not) and ping its API; never raises."""
    steps: list[str] = []
    try:
        connection = registry.connection()  # ECR: a token from AWS first
    except oci.RegistryError as exc:
        return ConnectionCheck(False, str(exc), steps)
    if isinstance(registry.provider_spec, EcrProvider) and not registry.is_public:
        steps.append("AWS accepted the credentials and issued an ECR authorization token.")
    try:
        with (
            registry.noting_route(steps, connection.transport),
            oci.RegistryClient(connection) as client,
        ):
            result = client.ping()
            if registry.chart_source and registry.provider_spec.is_oci:
                steps.append(listing_step(registry, client))
    except oci.RegistryError as exc:
        return ConnectionCheck(False, str(exc), steps)
    # Later clients (syncs, pushes) go straight to the scheme that answered.
    registry.remember_plain_http(result.base_url.startswith("http://"))
    if result.auth_scheme == "none":
        how = "it answered without asking for credentials"
    else:
        how = f"it accepted the credentials ({result.auth_scheme} auth)"
    return ConnectionCheck(True, f"Connected to {result.base_url}: {how}.", steps)


def listing_step(registry: Registry, client: oci.RegistryClient | None) -> str:
    """Whether the registry lists its repositories, how, and how many: for "All
    repositories" (a failure to list is said, never the check's failure)."""
    try:
        listing = list_repositories(registry, client=client, describe=False)
    except oci.RegistryError as exc:
        return f"Listing the repositories failed: {exc}"
    if not listing.listed:
        return listing.refusal
    count = len(listing.repositories)
    scope = ""
    if count != listing.seen:
        scope = f", {count:,} of them under the URL's path and prefixes"
    return (
        f"Listing the repositories works, through {listing.method_label}: it lists "
        f"{listing.seen:,} repositories{scope}."
    )
