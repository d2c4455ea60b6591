"""An OpenID Connect provider on a loopback port: oidc-provider-mock (from PyPI).

It serves discovery (``/.well-known/openid-configuration``), its RS256 key set, and an
authorization form where a test names the subject to sign in as; ``add_user`` gives a
subject its claims (``groups``, ``email``, ``preferred_username``…) in the ID token and
at the userinfo endpoint. Any client id and secret are accepted.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.servers.base import LOOPBACK, ChildServer, free_port, service_unavailable

CLIENT_ID = "wharf-tests"
CLIENT_SECRET = "oidc-client-Secret-1"


class OidcProvider(ChildServer):
    """``.url`` (the issuer), ``add_user(sub, **claims)``, ``authorize(url, sub)``."""

    name = "oidc-provider-mock"

    def __init__(self, workdir: Path) -> None:
        port = free_port()
        self.url = f"http://{LOOPBACK}:{port}"
        argv = [sys.executable, "-m", "oidc_provider_mock", "--host", LOOPBACK, "--port", str(port)]
        super().__init__(argv, workdir / "oidc.log", port)

    def ready(self) -> bool:
        try:
            response = requests.get(f"{self.url}/.well-known/openid-configuration", timeout=2)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def add_user(self, sub: str, **claims) -> None:
        response = requests.put(f"{self.url}/users/{quote(sub, safe='')}", json=claims, timeout=10)
        assert response.status_code == 204, response.text

    def authorize(self, authorization_url: str, sub: str) -> str:
        """Sign in at the provider's form as ``sub``; the URL it sends the browser back to."""
        assert authorization_url.startswith(self.url), authorization_url
        response = requests.post(
            authorization_url, data={"sub": sub}, allow_redirects=False, timeout=10
        )
        assert response.status_code in (302, 303), response.text[:500]
        return response.headers["Location"]

    def deny(self, authorization_url: str) -> str:
        """Press "Deny" at the provider's form; the URL it sends the browser back to."""
        response = requests.post(
            authorization_url, data={"action": "deny"}, allow_redirects=False, timeout=10
        )
        assert response.status_code in (302, 303), response.text[:500]
        return response.headers["Location"]


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    """oidc-provider-mock as a child on a free loopback port (see :class:`OidcProvider`)."""
    if importlib.util.find_spec("oidc_provider_mock") is None:
        service_unavailable("oidc-provider-mock is not installed (make install-dev)")
    server = OidcProvider(tmp_path_factory.mktemp("oidc"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def wharf_oidc(settings, oidc_provider) -> OidcProvider:
    """Wharf signs in through ``oidc_provider`` for this test (as WHARF_OIDC_* would set)."""
    settings.WHARF_OIDC_ISSUER = oidc_provider.url
    settings.SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = oidc_provider.url
    settings.SOCIAL_AUTH_OIDC_KEY = CLIENT_ID
    settings.SOCIAL_AUTH_OIDC_SECRET = CLIENT_SECRET
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "config.signin.OidcBackend",
    ]
    return oidc_provider
