"""LDAP sign-in (django-auth-ldap), loaded only where python-ldap is installed.

Settings turn it on (``WHARF_LDAP_SERVER_URI``, see config/settings.py) only when this
module can be imported. A person's directory groups are mirrored into Django groups
(``AUTH_LDAP_MIRROR_GROUPS``) at every sign-in, as config/signin.py does for OpenID Connect.
"""

from __future__ import annotations

import logging

from django_auth_ldap.backend import LDAPBackend, ldap_error

logger = logging.getLogger(__name__)


class WharfLDAPBackend(LDAPBackend):
    """django-auth-ldap, which never signs in to a local account (a user with a password
    of its own, such as the first admin): a directory entry of the same name is someone
    else until an administrator says otherwise (by removing the local password)."""

    def get_or_build_user(self, username, ldap_user):
        user, built = super().get_or_build_user(username, ldap_user)
        if not built and user.has_usable_password():
            raise ldap_user.AuthenticationFailed(
                f"{username!r} is a local account; it signs in with its own password"
            )
        return user, built


def _remember_directory_error(sender, context, user, request=None, exception=None, **kwargs):
    """The directory failed (unreachable, bad bind credentials): the sign-in page says so
    instead of "wrong password"."""
    logger.warning("LDAP %s failed: %s", context, type(exception).__name__)
    if request is not None:
        request.wharf_ldap_error = True


ldap_error.connect(_remember_directory_error, dispatch_uid="wharf-ldap-error")
