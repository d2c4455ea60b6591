from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "registries"
    verbose_name = "Container/OCI registries"

    def ready(self) -> None:
        from config import badges, impact
        from registries.impact import registry_impact
        from registries.models import Registry

        impact.register(Registry, registry_impact)
        badges.declare(
            Registry,
            "registry_type",
            {"public": "info", "private": "secondary"},
            labels={"public": "Public", "private": "Private"},
        )
