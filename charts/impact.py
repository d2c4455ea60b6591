"""What deleting a chart source's origin costs the Chart Store (for the delete pages)."""

from __future__ import annotations

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from config.impact import count
from registries.models import Registry


def registry_impact(registry: Registry) -> list[str]:
    if not registry.chart_source:
        return []
    charts = Chart.objects.filter(source__registry=registry).count()
    it = "it" if len(registry.repositories) == 1 else "them"
    repositories = count(len(registry.repositories), "repository", "repositories")
    if not charts:
        loses = f"nothing indexed from {it} is in the Chart Store."
    else:
        loses = (
            f"{count(charts, 'chart')} indexed from {it} "
            f"{'leaves' if charts == 1 else 'leave'} the Chart Store."
        )
    names = ", ".join(registry.repositories)
    return [f"It is a chart source for {repositories} ({names}): {loses}"]


def helm_repository_impact(repository: HelmRepository) -> list[str]:
    source = ChartSource.objects.filter(helm_repository=repository).first()
    charts = source.charts.count() if source is not None else 0
    if not charts:
        return ["Nothing indexed from it is in the Chart Store."]
    versions = ChartVersion.objects.filter(chart__source=source).count()
    return [
        f"{count(charts, 'chart')} ({count(versions, 'version')}) indexed from it "
        f"{'leaves' if charts == 1 else 'leave'} the Chart Store."
    ]
