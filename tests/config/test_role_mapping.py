"""Roles from grants and groups (config/roles.py, config/models.py), the start-up mapping
(WHARF_ROLE_GROUPS) and WHARF_REQUIRE_ROLE."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command

from config import roles
from config.models import GroupRole, UserRole
from config.rolesetup import apply_role_groups, parse_role_groups
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(django_user_model):
    return django_user_model.objects.create_user("ann")


def member_of(user, name: str, role: str, *, limit=None) -> GroupRole:
    group, _ = Group.objects.get_or_create(name=name)
    group.user_set.add(user)
    mapping = GroupRole.objects.create(group=group, role=role, push_limited=limit is not None)
    mapping.push_registries.set(limit or [])
    roles.forget(user)
    return mapping


def test_a_group_mapping_gives_its_members_the_role(ann):
    member_of(ann, "deployers", roles.OPERATOR)
    assert roles.role_of(ann) == roles.OPERATOR


def test_the_highest_of_the_grant_and_the_groups_wins(ann):
    UserRole.objects.create(user=ann, role=roles.OPERATOR)
    member_of(ann, "readers", roles.VIEWER)
    assert roles.role_of(ann) == roles.OPERATOR
    member_of(ann, "platform-admins", roles.ADMIN)
    assert roles.role_of(ann) == roles.ADMIN


def test_a_viewer_grant_does_not_lower_an_admin_group(ann):
    UserRole.objects.create(user=ann, role=roles.VIEWER)
    member_of(ann, "platform-admins", roles.ADMIN)
    assert roles.allows(ann, roles.ADMIN)


def test_a_user_without_a_role_is_a_viewer_unless_a_role_is_required(ann, settings):
    assert roles.role_of(ann) == roles.VIEWER
    settings.WHARF_REQUIRE_ROLE = True
    roles.forget(ann)
    assert roles.role_of(ann) is None
    assert not roles.allows(ann, roles.VIEWER)


def test_a_superuser_is_an_admin_even_when_a_role_is_required(django_user_model, settings):
    settings.WHARF_REQUIRE_ROLE = True
    root = django_user_model.objects.create_superuser("root", password="x" * 20)
    assert roles.role_of(root) == roles.ADMIN
    assert roles.can_push(root, RegistryFactory(push_helm=True))


def test_the_role_is_read_in_one_query_once_per_user_object(ann, django_assert_num_queries):
    member_of(ann, "deployers", roles.OPERATOR)
    with django_assert_num_queries(1):
        roles.role_of(ann)
        roles.allows(ann, roles.ADMIN)
        roles.can_push(ann, RegistryFactory.build(pk=1))
        roles.push_registry_ids(ann)


def test_an_operator_group_pushes_everywhere_without_a_limit(ann):
    member_of(ann, "deployers", roles.OPERATOR)
    assert roles.can_push(ann, RegistryFactory(push_helm=True))
    assert roles.push_registry_ids(ann) is None


def test_a_limited_group_pushes_only_to_its_registries(ann):
    allowed, other = RegistryFactory(push_helm=True), RegistryFactory(push_helm=True)
    member_of(ann, "deployers", roles.OPERATOR, limit=[allowed])
    assert roles.can_push(ann, allowed)
    assert not roles.can_push(ann, other)
    assert roles.push_registry_ids(ann) == {allowed.pk}


def test_limits_of_two_groups_add_up_and_an_unlimited_one_lifts_them(ann):
    first, second, third = (RegistryFactory(push_helm=True) for _ in range(3))
    member_of(ann, "team-a", roles.OPERATOR, limit=[first])
    member_of(ann, "team-b", roles.OPERATOR, limit=[second])
    assert roles.push_registry_ids(ann) == {first.pk, second.pk}
    member_of(ann, "release", roles.OPERATOR)
    assert roles.can_push(ann, third)


def test_a_limit_whose_registries_are_all_deleted_lets_nobody_push(ann):
    registry = RegistryFactory(push_helm=True)
    member_of(ann, "deployers", roles.OPERATOR, limit=[registry])
    registry.delete()
    roles.forget(ann)
    assert roles.allows(ann, roles.OPERATOR)
    assert roles.push_registry_ids(ann) == frozenset()
    assert not roles.can_push(ann, RegistryFactory(push_helm=True))


def test_a_viewer_group_with_an_operator_grant_pushes_everywhere(ann):
    UserRole.objects.create(user=ann, role=roles.OPERATOR)
    member_of(ann, "readers", roles.VIEWER)
    assert roles.can_push(ann, RegistryFactory(push_helm=True))


def test_viewers_may_not_push_anywhere(ann):
    member_of(ann, "readers", roles.VIEWER)
    assert not roles.can_push(ann, RegistryFactory(push_helm=True))
    assert roles.push_registry_ids(ann) == frozenset()


# --- the rules of a mapping -------------------------------------------------------------


def test_a_superuser_cannot_be_granted_a_role(django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x" * 20)
    with pytest.raises(ValidationError, match="superuser"):
        UserRole(user=root, role=roles.VIEWER).full_clean()


@pytest.mark.parametrize("role", [roles.VIEWER, roles.ADMIN])
def test_only_an_operator_mapping_can_limit_pushing(role):
    mapping = GroupRole(role=role, push_limited=True)
    with pytest.raises(ValidationError) as error:
        mapping.validate_mapping("deployers", [RegistryFactory(push_helm=True)])
    assert "push_limited" in error.value.message_dict


def test_a_limit_takes_only_registries_that_take_charts():
    mapping = GroupRole(role=roles.OPERATOR, push_limited=True)
    with pytest.raises(ValidationError, match="cannot take charts"):
        mapping.validate_mapping("deployers", [RegistryFactory(name="images", push_helm=False)])


def test_registries_without_the_limit_ticked_are_refused():
    mapping = GroupRole(role=roles.OPERATOR, push_limited=False)
    with pytest.raises(ValidationError, match="Tick this"):
        mapping.validate_mapping("deployers", [RegistryFactory(push_helm=True)])


def test_a_group_is_mapped_once():
    GroupRole.objects.create(group=Group.objects.create(name="deployers"), role=roles.VIEWER)
    with pytest.raises(ValidationError, match="mapped already"):
        GroupRole(role=roles.ADMIN).validate_mapping("deployers", [])


# --- WHARF_ROLE_GROUPS ----------------------------------------------------------------


def test_the_setting_reads_group_role_pairs():
    assert parse_role_groups(" platform-admins=admin, deployers = Operator ,") == {
        "platform-admins": "admin",
        "deployers": "operator",
    }


@pytest.mark.parametrize(
    ("text", "problem"), [("deployers", "not group=role"), ("deployers=boss", "not a role")]
)
def test_a_bad_setting_says_what_is_wrong(text, problem):
    with pytest.raises(ImproperlyConfigured, match=problem):
        parse_role_groups(text)


def test_applying_the_setting_twice_changes_nothing_the_second_time():
    assert len(apply_role_groups("platform-admins=admin,deployers=operator")) == 2
    assert apply_role_groups("platform-admins=admin,deployers=operator") == []
    assert dict(GroupRole.objects.values_list("group__name", "role")) == {
        "platform-admins": "admin",
        "deployers": "operator",
    }


def test_the_setting_changes_a_role_and_keeps_other_mappings():
    registry = RegistryFactory(push_helm=True)
    kept = GroupRole.objects.create(group=Group.objects.create(name="readers"), role="viewer")
    apply_role_groups("deployers=operator")
    deployers = GroupRole.objects.get(group__name="deployers")
    deployers.push_limited = True
    deployers.save()
    deployers.push_registries.set([registry])

    assert apply_role_groups("deployers=admin") == ["deployers=admin (was operator)"]

    deployers.refresh_from_db()
    assert (deployers.role, deployers.push_limited) == ("admin", False)
    assert list(deployers.push_registries.all()) == []
    assert GroupRole.objects.filter(pk=kept.pk, role="viewer").exists()


@pytest.mark.django_db(transaction=True)
def test_migrate_applies_the_setting(settings, ann):
    settings.WHARF_ROLE_GROUPS = "deployers=operator"
    out = io.StringIO()
    call_command("migrate", verbosity=1, stdout=out)
    assert "Role mapping from WHARF_ROLE_GROUPS: deployers=operator (new)" in out.getvalue()

    Group.objects.get(name="deployers").user_set.add(ann)
    assert roles.role_of(ann) == roles.OPERATOR
