import logging

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.db.models.signals import post_migrate


class WharfConfig(AppConfig):
    """The project package as an app: it owns the audit log, the roles and shared commands."""

    name = "config"
    label = "wharf"
    verbose_name = "Wharf"

    def ready(self) -> None:
        from config import impact
        from config.models import GroupRole
        from config.rolesetup import (
            apply_role_groups_after_migrate,
            group_role_deletion_impact,
            registry_deletion_impact,
        )
        from registries.models import Registry

        post_migrate.connect(apply_role_groups_after_migrate, sender=self)
        impact.register(Registry, registry_deletion_impact)
        impact.register(GroupRole, group_role_deletion_impact)
        checks.register(sign_in_check)
        if settings.WHARF_LDAP_PROBLEM:
            logging.getLogger("config.signin").warning(settings.WHARF_LDAP_PROBLEM)


def sign_in_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """LDAP configured but not installed: said by `manage.py check` (and at start-up)."""
    if not settings.WHARF_LDAP_PROBLEM:
        return []
    return [checks.Warning(settings.WHARF_LDAP_PROBLEM, id="wharf.W001")]
