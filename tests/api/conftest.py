"""Users of each role, their API tokens, and a client that sends one.

Each user holds its role by a grant (config.models.UserRole), as one made on the Roles
screen: config.roles decides what the token may do, as for the pages.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from api.models import issue_token
from config import roles
from config.models import UserRole

ROLE_OF_USER = {"viewer-1": roles.VIEWER, "operator-1": roles.OPERATOR, "admin-1": roles.ADMIN}


@pytest.fixture
def users(django_user_model):
    """One user of each role, each granted it on the Roles screen's terms (a UserRole)."""
    made = {}
    for name, role in ROLE_OF_USER.items():
        user = django_user_model.objects.create_user(name, password=f"{name}-password")
        UserRole.objects.create(user=user, role=role)
        made[role] = user
    return made


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
