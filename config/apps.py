from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WharfConfig(AppConfig):
    """The project package as an app: it owns the audit log, the roles and shared commands."""

    name = "config"
    label = "wharf"
    verbose_name = "Wharf"

    def ready(self):
        from config.rolesetup import apply_role_groups_after_migrate

        post_migrate.connect(apply_role_groups_after_migrate, sender=self)
