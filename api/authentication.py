"""How an API request says who sends it: a personal token (``Authorization: Bearer``), or
the browser session of a signed-in user (the browsable docs), whose writes need the CSRF
token as every form's do.

A failed token counts as a failed sign-in from the client's address (django-axes, the same
counter and limit as the sign-in page): past the limit the address is refused, a right token
too, with 429 until the cool-off ends.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from rest_framework import authentication, exceptions

from api.models import ApiToken, find_token

# What django-axes records for a failed token: never the token itself.
AXES_CREDENTIALS = {"username": "(API token)"}
KEYWORD = "Bearer"


def _locked_out_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        "Too many failed sign-ins or API tokens from this address: try again in "
        f"{minutes} minutes, or ask an admin to clear the lockout."
    )


class LockedOut(exceptions.Throttled):
    default_detail = "Too many failed sign-ins."

    def __init__(self) -> None:
        seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
        super().__init__(wait=seconds, detail=_locked_out_message())


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the token as “Authorization: Bearer <token>”."
            )
        from axes.handlers.proxy import AxesProxyHandler

        django_request = request._request
        if AxesProxyHandler.is_locked(django_request, AXES_CREDENTIALS):
            raise LockedOut()
        try:
            text = header[1].decode("ascii")
        except UnicodeDecodeError:
            text = ""
        token = find_token(text)
        if token is None:
            self._count_failure(django_request)
            raise exceptions.AuthenticationFailed(
                "This API token is not valid: it is mistyped, expired or revoked."
            )
        token.mark_used()
        return (token.user, token)

    def _count_failure(self, django_request) -> None:
        user_login_failed.send(
            sender=BearerTokenAuthentication, credentials=AXES_CREDENTIALS, request=django_request
        )
        locked = getattr(django_request, "axes_locked_out", False)
        # The API answers in JSON: the sign-in page's lockout HTML is not for it.
        django_request.axes_locked_out = False
        if locked:
            raise LockedOut()

    def authenticate_header(self, request) -> str:
        return f'{KEYWORD} realm="wharf"'


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """The signed-in browser (the API docs): writes need the CSRF token (DRF enforces it)."""


def token_of(request) -> ApiToken | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiToken) else None
