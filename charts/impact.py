"""What deleting a chart source's origin costs the Chart Store (for the delete pages)."""

from __future__ import annotations

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from config.impact import count
from registries.models import Registry


def registry_impact(registry: Registry) -> list[str]:
    if not registry.chart_source:
        return []
    charts = Chart.objects.filter(source__registry=registry).count()
    one_repository = len(registry.repositories) == 1
    repositories = count(len(registry.repositories), "repository", "repositories")
    return [
        f"It is a chart source for {repositories} ({', '.join(registry.repositories)}): "
        f"{count(charts, 'chart')} indexed from {'it' if one_repository else 'them'} "
        f"{'leaves' if charts == 1 else 'leave'} the Chart Store."
    ]


def helm_repository_impact(repository: HelmRepository) -> list[str]:
    source = ChartSource.objects.filter(helm_repository=repository).first()
    if source is None:
        return ["Nothing was indexed from it."]
    charts = source.charts.count()
    versions = ChartVersion.objects.filter(chart__source=source).count()
    return [
        f"{count(charts, 'chart')} ({count(versions, 'version')}) indexed from it "
        f"{'leaves' if charts == 1 else 'leave'} the Chart Store."
    ]
