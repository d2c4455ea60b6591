"""The one place that says who may do what (config/roles.py)."""

import pytest
from django.contrib.auth.models import AnonymousUser, User

from config import roles

pytestmark = pytest.mark.django_db


def test_a_superuser_is_an_admin_and_may_do_everything():
    user = User.objects.create_superuser("root", password="x" * 20)
    assert roles.role_of(user) == roles.ADMIN
    assert all(roles.allows(user, role) for role in roles.ROLES)


def test_a_signed_in_user_is_a_viewer_who_may_not_start_work():
    user = User.objects.create_user("ann", password="x" * 20)
    assert roles.role_of(user) == roles.VIEWER
    assert roles.allows(user, roles.VIEWER)
    assert not roles.allows(user, roles.OPERATOR)
    assert not roles.allows(user, roles.ADMIN)
    assert not roles.can_push(user, registry=None)


@pytest.mark.parametrize("kind", ["anonymous", "inactive"])
def test_anonymous_and_inactive_users_hold_no_role(kind):
    if kind == "anonymous":
        user = AnonymousUser()
    else:
        user = User.objects.create_superuser("gone", password="x" * 20, is_active=False)
    assert roles.role_of(user) is None
    assert not any(roles.allows(user, role) for role in roles.ROLES)
