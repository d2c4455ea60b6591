"""Signing in: local accounts, OpenID Connect and LDAP, and the Django groups they bring.

- **Local accounts** (Django's users with a password): the first admin and break-glass.
  ``WHARF_LOCAL_SIGN_IN=superusers`` keeps them for superusers only
  (:class:`LocalAccountBackend`).
- **OpenID Connect** through social-auth (:class:`OidcBackend`): the issuer's
  ``.well-known/openid-configuration`` says where everything is, ID tokens must be RS256
  and signed by a key of the issuer's JWKS. A person is known by the issuer's ``sub``
  (never matched to an existing user by e-mail or name).
- **LDAP** through django-auth-ldap (``config/signin_ldap.py``), only where python-ldap is
  installed.

Both identity providers mirror the person's groups into Django groups at every sign-in:
the user's ``auth.Group`` memberships become exactly the groups the provider named (new
groups are created). Roles are granted to Django groups elsewhere; this module knows
nothing of them.

Failures of the provider (unreachable, a token that does not verify, a sign-in cancelled
there) become a message on the sign-in page, never an error page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.db import transaction
from social_core import exceptions as social
from social_core.backends.base import http_error
from social_core.backends.open_id_connect import OpenIdConnectAuth

from config import http

logger = logging.getLogger(__name__)

LOCAL_BACKEND = "config.signin.LocalAccountBackend"
OIDC_BACKEND = "config.signin.OidcBackend"
LDAP_BACKEND = "config.signin_ldap.WharfLDAPBackend"

LOCAL_FOR_EVERYONE = "everyone"
LOCAL_FOR_SUPERUSERS = "superusers"
GROUP_NAME_MAX = Group._meta.get_field("name").max_length or 150


class LocalAccountBackend(ModelBackend):
    """Django's username and password, for everyone or (``WHARF_LOCAL_SIGN_IN=superusers``)
    for superusers only: the first admin and break-glass accounts."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return settings.WHARF_LOCAL_SIGN_IN == LOCAL_FOR_EVERYONE or user.is_superuser


class OidcBackend(OpenIdConnectAuth):
    """The one OpenID Connect provider (``WHARF_OIDC_*``). Configuration from discovery,
    RS256 ID tokens only, the authorization code flow with PKCE.

    Every call to the provider goes through config.http: ``WHARF_OIDC_TIMEOUT`` bounds the
    whole call (a provider that drips its answer cannot hold a web worker), and the trust
    store is the one every other outbound call uses (``REQUESTS_CA_BUNDLE`` for a private CA).
    """

    name = "oidc"
    JWT_ALGORITHMS = ["RS256"]
    DEFAULT_USE_PKCE = True

    def request(  # type: ignore[override]  # the same call, through Wharf's HTTP layer
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict | None = None,
        data: dict | None = None,
        json: dict | None = None,
        auth: Any = None,
        params: dict | None = None,
        timeout: float | None = None,
        stage: Any = "user_info",
    ) -> requests.Response:
        seconds = timeout or float(settings.SOCIAL_AUTH_OIDC_REQUESTS_TIMEOUT)
        transport = http.Transport(timeout=seconds, deadline=seconds)
        host = urlsplit(url).netloc
        try:
            with http.HttpSession(
                transport, host=host, what="identity provider", user_agent="Wharf"
            ) as session:
                response = session.send(
                    method, url, headers=headers, data=data, json=json, auth=auth, params=params
                )
        except requests.exceptions.SSLError:
            raise social.AuthProviderError(self, code="tls_error", stage=stage) from None
        except requests.Timeout:
            raise social.AuthProviderError(self, code="timeout", stage=stage) from None
        except (requests.RequestException, http.HttpError):
            raise social.AuthProviderError(self, code="connection_failed", stage=stage) from None
        try:
            response.raise_for_status()
        except requests.HTTPError as error:
            raise http_error(self, error, stage=stage) from None
        return response


def oidc_enabled() -> bool:
    return OIDC_BACKEND in settings.AUTHENTICATION_BACKENDS


def ldap_enabled() -> bool:
    return LDAP_BACKEND in settings.AUTHENTICATION_BACKENDS


def mirror_groups(user, groups: Iterable[str]) -> None:
    """Make ``user``'s Django groups exactly ``groups`` (creating the ones not there yet).

    A name longer than a Django group's name may be is left out, with a warning."""
    wanted = set()
    for name in groups:
        if len(name) > GROUP_NAME_MAX:
            logger.warning(
                "Group name of %d characters left out (at most %d)", len(name), GROUP_NAME_MAX
            )
            continue
        wanted.add(name)
    with transaction.atomic():
        existing = {g.name: g for g in Group.objects.filter(name__in=wanted)}
        for name in sorted(wanted - existing.keys()):
            existing[name], _ = Group.objects.get_or_create(name=name)
        user.groups.set(existing.values())


def mirror_oidc_groups(backend, user=None, groups=None, **kwargs) -> None:
    """social-auth pipeline step: the groups of the configured claim become the user's
    Django groups (no claim at all: no groups)."""
    if user is not None and groups is not None:
        mirror_groups(user, groups)


# --- signing out at the identity provider (RP-initiated logout) ------------------------

# Where the provider ends its own session, kept in the Wharf session of an SSO sign-in.
PROVIDER_SIGN_OUT_KEY = "wharf_oidc_end_session"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def issuer_origin() -> str:
    return _origin(settings.WHARF_OIDC_ISSUER)


def signs_out_at_provider() -> bool:
    return oidc_enabled() and settings.WHARF_OIDC_SIGN_OUT_AT_PROVIDER


def remember_provider_sign_out(request, backend) -> None:
    """After an SSO sign-in (``WHARF_OIDC_SIGN_OUT_AT_PROVIDER``): keep the provider's
    ``end_session_endpoint`` in the session, for signing out there too.

    It comes from the discovery document the sign-in just read (cached: nothing is fetched
    here, and nothing at sign-out). Only an endpoint on the issuer's own origin is kept:
    the sign-out form may continue only there (form-action), and a discovery document
    cannot send a signed-out browser anywhere else."""
    if not signs_out_at_provider():
        return
    try:
        endpoint = backend.oidc_config().get("end_session_endpoint")
    except social.SocialAuthBaseException:
        return
    if not isinstance(endpoint, str) or _origin(endpoint) != issuer_origin():
        if endpoint:
            logger.warning(
                "The identity provider's end_session_endpoint is not on the issuer's origin "
                "%s: signing out ends the Wharf session only.",
                issuer_origin(),
            )
        return
    if urlsplit(endpoint).scheme in ("http", "https"):
        request.session[PROVIDER_SIGN_OUT_KEY] = endpoint


def provider_sign_out_url(endpoint: str, return_to: str) -> str:
    """The provider's end-session address for a browser just signed out of Wharf:
    ``client_id`` names Wharf (no ID token is kept to give as ``id_token_hint``), and
    ``post_logout_redirect_uri`` brings the browser back to Wharf's sign-in page (it must
    be registered at the provider)."""
    parts = urlsplit(endpoint)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("client_id", settings.SOCIAL_AUTH_OIDC_KEY), ("post_logout_redirect_uri", return_to)]
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- messages for a failed single sign-on ----------------------------------------------


@dataclass(frozen=True)
class SignInProblem:
    """What the sign-in page says about a failed single sign-on, with its HTTP status."""

    message: str
    status: int


def problem_of(exception: social.SocialAuthBaseException) -> SignInProblem:
    """The message for a social-auth failure: what happened and what to do, never the
    provider's own text (it may quote tokens or internal URLs)."""
    provider = settings.WHARF_OIDC_BUTTON_LABEL.removeprefix("Sign in with ").strip()
    if isinstance(exception, social.AuthCanceled):
        return SignInProblem(f"Sign-in was cancelled at {provider}. Try again when ready.", 403)
    if isinstance(exception, social.AuthProviderError):
        reason = {
            "timeout": "it did not answer in time",
            "tls_error": "its TLS certificate was not trusted",
            "http_error": "it answered with an error",
        }.get(exception.code or "", "it could not be reached")
        status = 504 if exception.code == "timeout" else 502
        return SignInProblem(
            f"Wharf could not talk to {provider}: {reason}. Try again in a moment; if it "
            "goes on, tell an administrator (Wharf's log names the cause).",
            status,
        )
    if isinstance(exception, (social.AuthSessionError, social.AuthInputError)):
        return SignInProblem(
            "This sign-in could not be finished: it started in another browser or tab, or "
            "took too long. Start again with the button below.",
            400,
        )
    if isinstance(exception, social.AuthConfigurationError):
        return SignInProblem(
            f"Sign-in with {provider} is not set up correctly. Tell an administrator "
            "(Wharf's log names the setting).",
            502,
        )
    if isinstance(exception, social.AuthAssociationError):
        return SignInProblem(
            f"This {provider} account is linked to another Wharf user. Tell an administrator.",
            409,
        )
    if isinstance(exception, social.AuthResponseError):
        return SignInProblem(
            f"{provider}'s answer could not be verified (its token or claims were not "
            "valid), so you were not signed in. Tell an administrator if this goes on.",
            502,
        )
    return SignInProblem(f"Sign-in with {provider} failed. Try again.", 400)


def log_problem(exception: social.SocialAuthBaseException) -> None:
    details: dict[str, Any] = {
        "error": type(exception).__name__,
        "code": getattr(exception, "code", None),
        "stage": getattr(exception, "stage", None),
    }
    cause = exception.__cause__
    if cause is not None:
        details["cause"] = type(cause).__name__
    logger.warning("Single sign-on failed: %s", details)
