""" "Test connection": log in to a registry the way every later feature will."""

from __future__ import annotations

from dataclasses import dataclass, field

from registries import oci, tunnel
from registries.aws import AwsError
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
        connection = registry.connection()
    except AwsError as exc:
        return ConnectionCheck(False, f"AWS did not issue an ECR token: {exc}", steps)
    if isinstance(registry.provider_spec, EcrProvider) and not registry.is_public:
        steps.append("AWS accepted the credentials and issued an ECR authorization token.")
    pinned_before = registry.ssh_host_key
    try:
        result = oci.ping(connection)
    except oci.RegistryError as exc:
        return ConnectionCheck(False, str(exc), steps)
    finally:
        if registry.ssh_host_key != pinned_before:
            steps.append(_trusted_step(registry))
    if connection.ssh is not None:
        steps.append(f"Opened an SSH tunnel through {connection.ssh.address}.")
    elif connection.proxy_url:
        steps.append(f"Went through the proxy {connection.proxy_address}.")
    if result.auth_scheme == "none":
        how = "it answered without asking for credentials"
    else:
        how = f"it accepted the credentials ({result.auth_scheme} auth)"
    return ConnectionCheck(True, f"Connected to {result.base_url}: {how}.", steps)


def _trusted_step(registry: Registry) -> str:
    keys = tunnel.parse_host_keys(registry.ssh_host_key)
    saved = "saved as the pinned host key" if registry.pk else "pinned when the registry is saved"
    return (
        f"Trusted the SSH server's host key on first use ({tunnel.describe_key(keys[0])}); {saved}."
    )
