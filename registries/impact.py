"""What deleting a registry costs the registries app itself (charts and clusters say the rest)."""

from __future__ import annotations

from registries.models import Registry


def registry_impact(registry: Registry) -> list[str]:
    if registry.is_default:
        return ["It is the default registry; no registry will be default afterwards."]
    return []
