from django.apps import AppConfig


class TrustConfig(AppConfig):
    name = "trust"
    verbose_name = "Trust"

    def ready(self) -> None:
        from charts.models import Chart, ChartVersion
        from config import badges
        from trust import signals  # noqa: F401 - connects the receivers
        from trust.models import SigningKey

        badges.declare(SigningKey, "kind", {"openpgp": "primary", "cosign": "info"})
        # A chart version's trust status (the field is the chart's; its meaning is ours).
        colours = {
            "": "light",
            "verified": "success",
            "signed-unverified": "warning",
            "unsigned": "secondary",
            "failed": "danger",
        }
        badges.declare(ChartVersion, "trust_status", colours)
        badges.declare(Chart, "latest_trust", colours)
