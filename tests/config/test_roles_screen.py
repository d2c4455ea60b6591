"""The Roles screen (Global Configurations → Roles) through the test client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from config.models import AuditEntry, GroupRole, UserRole
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def test_mapping_a_new_group_makes_it_and_limits_its_push(admin_client):
    charts, images = RegistryFactory(name="charts", push_helm=True), RegistryFactory(name="img")
    response = admin_client.post(
        reverse("config:grouprole_add"),
        {
            "group_name": " deployers ",
            "role": "operator",
            "push_limited": "on",
            "push_registries": [charts.pk],
        },
    )
    assert response.status_code == 302
    mapping = GroupRole.objects.get(group__name="deployers")
    assert (mapping.role, mapping.push_limited) == ("operator", True)
    assert list(mapping.push_registries.all()) == [charts]
    assert AuditEntry.objects.filter(object_type="group role", action="create").exists()

    html = admin_client.get(reverse("config:roles")).content.decode()
    assert "deployers" in html and "Only charts" in html
    form = admin_client.get(reverse("config:grouprole_edit", args=[mapping.pk])).content.decode()
    assert 'value="deployers"' in form and images.name not in form  # takes no charts


def test_a_limit_on_a_viewer_group_is_refused_with_a_message(admin_client):
    charts = RegistryFactory(push_helm=True)
    response = admin_client.post(
        reverse("config:grouprole_add"),
        {"group_name": "readers", "role": "viewer", "push_limited": "on",
         "push_registries": [charts.pk]},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Viewers cannot push" in response.content.decode()
    assert not GroupRole.objects.exists() and not Group.objects.filter(name="readers").exists()


def test_a_group_mapped_already_is_refused(admin_client):
    GroupRole.objects.create(group=Group.objects.create(name="deployers"), role="viewer")
    response = admin_client.post(
        reverse("config:grouprole_add"), {"group_name": "deployers", "role": "admin"}
    )
    assert "mapped already" in response.content.decode()
    assert GroupRole.objects.get().role == "viewer"


def test_a_huge_registry_id_is_an_invalid_choice_not_a_crash(admin_client):
    response = admin_client.post(
        reverse("config:grouprole_add"),
        {"group_name": "x", "role": "operator", "push_limited": "on",
         "push_registries": [str(2**70)]},
    )  # fmt: skip
    assert response.status_code == 200
    assert "not one of the available choices" in response.content.decode()


def test_changing_a_mapping_to_another_group_name_moves_it(admin_client):
    mapping = GroupRole.objects.create(group=Group.objects.create(name="old"), role="viewer")
    admin_client.post(
        reverse("config:grouprole_edit", args=[mapping.pk]),
        {"group_name": "new", "role": "operator"},
    )
    mapping.refresh_from_db()
    assert (mapping.group.name, mapping.role) == ("new", "operator")


def test_granting_changing_and_removing_a_users_role(admin_client, plain_user):
    admin_client.post(reverse("config:userrole_add"), {"user": plain_user.pk, "role": "operator"})
    grant = UserRole.objects.get(user=plain_user)
    assert grant.role == "operator"

    admin_client.post(
        reverse("config:userrole_edit", args=[grant.pk]), {"user": plain_user.pk, "role": "admin"}
    )
    grant.refresh_from_db()
    assert grant.role == "admin"

    response = admin_client.post(reverse("config:userrole_delete", args=[grant.pk]))
    assert response["Location"] == reverse("config:roles")
    assert not UserRole.objects.exists()
    actions = set(
        AuditEntry.objects.filter(object_type="user role").values_list("action", flat=True)
    )
    assert actions == {"create", "update", "delete"}


def test_a_superuser_is_not_offered_and_cannot_be_granted_a_role(admin_client, superuser):
    form = admin_client.get(reverse("config:userrole_add")).content.decode()
    assert f'value="{superuser.pk}"' not in form
    response = admin_client.post(
        reverse("config:userrole_add"), {"user": superuser.pk, "role": "viewer"}
    )
    assert response.status_code == 200 and not UserRole.objects.exists()


def test_the_roles_page_lists_grants_and_mappings_in_few_queries(
    admin_client, django_user_model, django_assert_max_num_queries
):
    for n in range(10):
        user = django_user_model.objects.create_user(f"user-{n}")
        UserRole.objects.create(user=user, role="viewer")
        group = Group.objects.create(name=f"group-{n}")
        group.user_set.add(user)
        mapping = GroupRole.objects.create(group=group, role="operator", push_limited=True)
        mapping.push_registries.set([RegistryFactory(push_helm=True)])
    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("config:roles"))
    html = response.content.decode()
    assert "user-9" in html and "group-9" in html


def test_an_operator_may_not_open_the_roles_screen(client, django_user_model):
    operator = django_user_model.objects.create_user("op")
    UserRole.objects.create(user=operator, role="operator")
    client.force_login(operator)
    assert client.get(reverse("config:roles")).status_code == 403
    assert (
        client.post(
            reverse("config:grouprole_add"), {"group_name": "x", "role": "admin"}
        ).status_code
        == 403
    )
    assert not GroupRole.objects.exists()


def test_deleting_a_registry_names_the_push_limits_that_lose_it(admin_client):
    registry = RegistryFactory(push_helm=True)
    mapping = GroupRole.objects.create(
        group=Group.objects.create(name="deployers"), role="operator", push_limited=True
    )
    mapping.push_registries.set([registry])
    html = admin_client.get(reverse("registries:registry_delete", args=[registry.pk]))
    assert "Push limits of deployers lose this registry" in html.content.decode()


def test_deleting_a_mapping_says_how_many_members_lose_the_role(admin_client, plain_user):
    group = Group.objects.create(name="deployers")
    group.user_set.add(plain_user)
    mapping = GroupRole.objects.create(group=group, role="operator")
    html = admin_client.get(reverse("config:grouprole_delete", args=[mapping.pk]))
    assert "1 member of deployers lose the operator role" in html.content.decode()
    admin_client.post(reverse("config:grouprole_delete", args=[mapping.pk]))
    assert not GroupRole.objects.exists() and Group.objects.filter(name="deployers").exists()
