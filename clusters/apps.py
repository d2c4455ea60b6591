from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Clusters & environments"

    def ready(self) -> None:
        from clusters import signals  # noqa: F401  (connects the receivers)
