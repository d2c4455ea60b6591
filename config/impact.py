"""What deleting an object takes with it, told by the apps that own the data.

An app registers, in its ``AppConfig.ready()``, a provider for each model whose deletion
costs it something: charts for registries and Helm repositories (indexed charts leave the
store), clusters for registries, clusters and environments (pull secrets are removed). The
delete page lists every provider's lines, so an app never reaches into the apps built on it
to describe what they lose.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models

ImpactProvider = Callable[[models.Model], list[str]]

_providers: dict[type[models.Model], list[ImpactProvider]] = {}


def register(model: type[models.Model], provider: ImpactProvider) -> None:
    """Have ``provider(obj)`` describe what deleting a ``model`` object costs (once)."""
    providers = _providers.setdefault(model, [])
    if provider not in providers:
        providers.append(provider)


def impact_of(obj: models.Model) -> list[str]:
    """Every line the providers of ``obj``'s model give, in the order they registered."""
    lines: list[str] = []
    for provider in _providers.get(obj._meta.concrete_model, ()):
        lines.extend(provider(obj))
    return lines


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 namespace``, ``3 namespaces``: a count with its noun agreeing."""
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"
