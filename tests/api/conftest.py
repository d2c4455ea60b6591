"""Users of each role, their API tokens, and a client that sends one.

Who holds which role is config.roles' business (grants and groups may decide it); these
tests give each user its role by name, so they hold whatever role_of grows into.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api.models import issue_token
from config import roles

ROLE_OF_USER = {"viewer-1": roles.VIEWER, "operator-1": roles.OPERATOR, "admin-1": roles.ADMIN}


@pytest.fixture(autouse=True)
def _roles_by_name(monkeypatch):
    real = roles.role_of

    def role_of(user):
        held = real(user)
        if held is None:
            return None
        return ROLE_OF_USER.get(user.get_username(), held)

    monkeypatch.setattr(roles, "role_of", role_of)


@pytest.fixture
def users(django_user_model):
    return {
        role: django_user_model.objects.create_user(name, password=f"{name}-password")
        for name, role in ROLE_OF_USER.items()
    }


@pytest.fixture
def tokens(users):
    """A token (its text) for each role."""
    return {role: issue_token(user, f"{role}-ci")[1] for role, user in users.items()}


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def api(tokens):
    """``api(role)``: a client sending that role's token."""
    return lambda role: bearer(tokens[role])


@pytest.fixture(scope="session")
def chart_registry(registry_factory):
    """A real registry to push charts to: plain HTTP, no authentication."""
    return registry_factory()
