"""Roles as the API applies them beyond the role's rank: push limits per group, users with
no role under WHARF_REQUIRE_ROLE, and grants taken away while a token lives."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from api.models import issue_token
from config import roles
from config.models import GroupRole, UserRole
from tests.api.conftest import bearer
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def not_a_chart() -> SimpleUploadedFile:
    return SimpleUploadedFile("c.tgz", b"not a chart", "application/gzip")


def test_a_group_limited_to_one_registry_pushes_there_and_nowhere_else(django_user_model):
    allowed = RegistryFactory(name="team", push_helm=True)
    RegistryFactory(name="other", push_helm=True)
    group = Group.objects.create(name="ci")
    mapping = GroupRole.objects.create(group=group, role=roles.OPERATOR, push_limited=True)
    mapping.push_registries.set([allowed])
    user = django_user_model.objects.create_user("pusher")
    user.groups.add(group)
    client = bearer(issue_token(user, "ci")[1])

    there = client.post("/api/v1/registries/team/pushes/", {"archive": not_a_chart()})
    elsewhere = client.post("/api/v1/registries/other/pushes/", {"archive": not_a_chart()})

    assert there.status_code == 400  # past the role check, refused for the archive
    assert elsewhere.status_code == 403


def test_a_user_without_a_role_gets_nothing_with_a_token_when_a_role_is_required(
    django_user_model, settings
):
    settings.WHARF_REQUIRE_ROLE = True
    user = django_user_model.objects.create_user("nobody")
    client = bearer(issue_token(user, "ci")[1])

    assert client.get("/api/v1/charts/").status_code == 403
    assert client.get("/api/v1/schema/").status_code == 403


def test_a_token_loses_what_a_removed_grant_gave_at_once(api, users):
    assert api("admin").get("/api/v1/clusters/").status_code == 200

    UserRole.objects.filter(user=users[roles.ADMIN]).delete()

    assert api("admin").get("/api/v1/clusters/").status_code == 403
    assert api("admin").get("/api/v1/charts/").status_code == 200  # a viewer, as anyone
