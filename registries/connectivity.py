""" "Test connection": log in to a registry the way every later feature will."""

from __future__ import annotations

from dataclasses import dataclass, field

from registries import oci
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
        with registry.noting_route(steps, connection.transport):
            result = oci.ping(connection)
    except oci.RegistryError as exc:
        return ConnectionCheck(False, str(exc), steps)
    # Later clients (syncs, pushes) go straight to the scheme that answered.
    registry.remember_plain_http(result.base_url.startswith("http://"))
    if result.auth_scheme == "none":
        how = "it answered without asking for credentials"
    else:
        how = f"it accepted the credentials ({result.auth_scheme} auth)"
    return ConnectionCheck(True, f"Connected to {result.base_url}: {how}.", steps)
