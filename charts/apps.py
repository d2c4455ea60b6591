from django.apps import AppConfig


class ChartsConfig(AppConfig):
    name = "charts"
    verbose_name = "Charts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from charts import signals  # noqa: F401 - connects the receivers
        from charts.impact import helm_repository_impact, registry_impact
        from charts.models import ChartPush, HelmRepository, SyncRun
        from charts.search import repair_sqlite_search
        from config import badges, impact
        from registries.models import Registry

        # SQLite drops the search table's triggers when a migration rebuilds charts_chart.
        post_migrate.connect(repair_sqlite_search, sender=self, dispatch_uid="chart-search")

        # What a delete page says the Chart Store loses.
        impact.register(Registry, registry_impact)
        impact.register(HelmRepository, helm_repository_impact)

        # Runs take their colours from config.runs; these kinds name states in their words.
        badges.declare(SyncRun, "status", {}, labels={"running": "Syncing", "succeeded": "Synced"})
        badges.declare(ChartPush, "status", {}, labels={"running": "Pushing"})
        access = {"public": "info", "private": "secondary"}
        badges.declare(
            HelmRepository, "access", access, labels={"public": "Public", "private": "Private"}
        )
