"""django-auth-ldap's ``AUTH_LDAP_*`` settings from Wharf's ``WHARF_LDAP_*`` variables.

Free of Django's app registry, so config/settings.py can call it; the tests call it too,
with a test directory's values. python-ldap is imported only here and only when LDAP is
configured: a laptop without it runs Wharf with LDAP off (:func:`ldap_importable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# Every variable read (all strings; empty means unset). WHARF_LDAP_BIND_PASSWORD_FILE works
# as for every secret.
VARIABLES = (
    "WHARF_LDAP_SERVER_URI",
    "WHARF_LDAP_BIND_DN",
    "WHARF_LDAP_BIND_PASSWORD",
    "WHARF_LDAP_USER_BASE",
    "WHARF_LDAP_USER_FILTER",
    "WHARF_LDAP_GROUP_BASE",
    "WHARF_LDAP_GROUP_TYPE",
    "WHARF_LDAP_GROUP_FILTER",
    "WHARF_LDAP_START_TLS",
    "WHARF_LDAP_CA_FILE",
    "WHARF_LDAP_TIMEOUT",
)
GROUP_TYPES = ("groupOfNames", "groupOfUniqueNames", "posixGroup")

NOT_INSTALLED = (
    "WHARF_LDAP_SERVER_URI is set, but python-ldap and django-auth-ldap are not installed, "
    "so LDAP sign-in is off. Install them with `make install-ldap` (it builds python-ldap: "
    "on Debian, apt-get install libldap2-dev libsasl2-dev first)."
)


def ldap_importable() -> bool:
    try:
        import django_auth_ldap  # noqa: F401
        import ldap  # noqa: F401
    except ImportError:
        return False
    return True


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def auth_ldap_settings(values: Mapping[str, str]) -> dict[str, Any]:
    """The ``AUTH_LDAP_*`` settings for ``values`` (``WHARF_LDAP_*`` → text); a setting that
    cannot work raises ImproperlyConfigured naming it. Needs python-ldap."""
    import ldap
    from django_auth_ldap import config as ldap_config

    def get(name: str, default: str = "") -> str:
        return values.get(name, "").strip() or default

    group_type = get("WHARF_LDAP_GROUP_TYPE", "groupOfNames")
    if group_type not in GROUP_TYPES:
        raise ImproperlyConfigured(
            f"WHARF_LDAP_GROUP_TYPE must be one of {', '.join(GROUP_TYPES)}, not {group_type!r}."
        )
    user_base, group_base = get("WHARF_LDAP_USER_BASE"), get("WHARF_LDAP_GROUP_BASE")
    if not (user_base and group_base):
        raise ImproperlyConfigured(
            "WHARF_LDAP_SERVER_URI is set, so WHARF_LDAP_USER_BASE and WHARF_LDAP_GROUP_BASE "
            "must be too (where the directory keeps users and groups)."
        )
    try:
        timeout = float(get("WHARF_LDAP_TIMEOUT", "10"))
    except ValueError:
        raise ImproperlyConfigured("WHARF_LDAP_TIMEOUT is seconds, such as 10.") from None
    types = {
        "groupOfNames": ldap_config.GroupOfNamesType,
        "groupOfUniqueNames": ldap_config.GroupOfUniqueNamesType,
        "posixGroup": ldap_config.PosixGroupType,
    }
    result: dict[str, Any] = {
        "AUTH_LDAP_SERVER_URI": get("WHARF_LDAP_SERVER_URI"),
        # Empty: search anonymously.
        "AUTH_LDAP_BIND_DN": get("WHARF_LDAP_BIND_DN"),
        "AUTH_LDAP_BIND_PASSWORD": values.get("WHARF_LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": _flag(get("WHARF_LDAP_START_TLS", "0")),
        "AUTH_LDAP_USER_SEARCH": ldap_config.LDAPSearch(
            user_base, ldap.SCOPE_SUBTREE, get("WHARF_LDAP_USER_FILTER", "(uid=%(user)s)")
        ),
        "AUTH_LDAP_GROUP_SEARCH": ldap_config.LDAPSearch(
            group_base,
            ldap.SCOPE_SUBTREE,
            get("WHARF_LDAP_GROUP_FILTER", f"(objectClass={group_type})"),
        ),
        "AUTH_LDAP_GROUP_TYPE": types[group_type](),
        # The user's Django groups become exactly their directory groups at each sign-in.
        "AUTH_LDAP_MIRROR_GROUPS": True,
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        # Every call has a deadline: connecting, and each operation.
        "AUTH_LDAP_CONNECTION_OPTIONS": {
            ldap.OPT_NETWORK_TIMEOUT: timeout,
            ldap.OPT_TIMEOUT: timeout,
            ldap.OPT_REFERRALS: 0,
        },
    }
    if get("WHARF_LDAP_CA_FILE"):
        result["AUTH_LDAP_GLOBAL_OPTIONS"] = {ldap.OPT_X_TLS_CACERTFILE: get("WHARF_LDAP_CA_FILE")}
    return result
