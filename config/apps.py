from django.apps import AppConfig


class WharfConfig(AppConfig):
    """The project package as an app: it owns the audit log and shared commands."""

    name = "config"
    label = "wharf"
    verbose_name = "Wharf"
