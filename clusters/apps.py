from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Clusters & environments"

    def ready(self) -> None:
        from clusters import signals  # noqa: F401  (connects the receivers)
        from clusters.impact import cluster_impact, environment_impact, registry_impact
        from clusters.models import Cluster, Environment, PullSecretTarget, PullTestResult
        from config import badges, impact
        from registries.models import Registry

        # What a delete page says the clusters lose (pull secrets, environments).
        impact.register(Registry, registry_impact)
        impact.register(Cluster, cluster_impact)
        impact.register(Environment, environment_impact)

        # A cluster's last known health (the list shows it).
        badges.declare(
            Cluster,
            "health",
            {
                Cluster.Health.UNKNOWN: "secondary",
                Cluster.Health.OK: "success",
                Cluster.Health.FAILED: "danger",
            },
        )

        # The colour of each pull-secret target status, wherever it is shown.
        Status = PullSecretTarget.Status
        badges.declare(
            PullSecretTarget,
            "status",
            {
                Status.PENDING: "info",
                Status.IN_SYNC: "success",
                Status.FAILED: "danger",
                Status.MISSING: "warning",
            },
        )

        # How a target's last in-cluster pull test went.
        Result = PullTestResult.Result
        badges.declare(
            PullTestResult,
            "result",
            {
                Result.TESTING: "info",
                Result.PULLED: "success",
                Result.NOT_PULLED: "danger",
                Result.TIMED_OUT: "warning",
                Result.ERROR: "secondary",
            },
        )
