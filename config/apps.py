import logging

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class WharfConfig(AppConfig):
    """The project package as an app: it owns the audit log and shared commands."""

    name = "config"
    label = "wharf"
    verbose_name = "Wharf"

    def ready(self) -> None:
        checks.register(sign_in_check)
        if settings.WHARF_LDAP_PROBLEM:
            logging.getLogger("config.signin").warning(settings.WHARF_LDAP_PROBLEM)


def sign_in_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """LDAP configured but not installed: said by `manage.py check` (and at start-up)."""
    if not settings.WHARF_LDAP_PROBLEM:
        return []
    return [checks.Warning(settings.WHARF_LDAP_PROBLEM, id="wharf.W001")]
