"""What deleting a chart source's origin costs the Chart Store (for the delete pages)."""

from __future__ import annotations

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from registries.models import Registry


def registry_impact(registry: Registry) -> list[str]:
    if not registry.chart_source:
        return []
    charts = Chart.objects.filter(source__registry=registry).count()
    return [
        f"It is a chart source for {len(registry.repositories)} repositories "
        f"({', '.join(registry.repositories)}): the {charts} charts indexed from them leave "
        "the Chart Store."
    ]


def helm_repository_impact(repository: HelmRepository) -> list[str]:
    source = ChartSource.objects.filter(helm_repository=repository).first()
    if source is None:
        return ["Nothing was indexed from it."]
    charts = source.charts.count()
    versions = ChartVersion.objects.filter(chart__source=source).count()
    return [f"{charts} charts ({versions} versions) indexed from it leave the Chart Store."]
