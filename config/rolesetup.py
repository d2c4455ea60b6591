"""Group-to-role mappings from the ``WHARF_ROLE_GROUPS`` setting, applied after every
``migrate`` (which every start-up runs: ``make run``, the image's ``migrate``, the Helm
chart's migration Job), so a fresh install already maps its identity provider's groups;
and what deleting a registry or a mapping takes from the roles (config.impact)."""

from __future__ import annotations

import sys

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from config.impact import count
from config.models import GroupRole, Role


def parse_role_groups(text: str) -> dict[str, str]:
    """``"platform-admins=admin, deployers=operator"`` → ``{group name: role}``."""
    mapping: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, role = item.partition("=")
        name, role = name.strip(), role.strip().lower()
        if not sep or not name:
            raise ImproperlyConfigured(
                f"WHARF_ROLE_GROUPS: “{item.strip()}” is not group=role (e.g. deployers=operator)."
            )
        if role not in Role.values:
            raise ImproperlyConfigured(
                f"WHARF_ROLE_GROUPS: “{role}” for {name} is not a role: use one of "
                f"{', '.join(Role.values)}."
            )
        if len(name) > Group._meta.get_field("name").max_length:
            raise ImproperlyConfigured(f"WHARF_ROLE_GROUPS: the group name {name} is too long.")
        mapping[name] = role
    return mapping


def apply_role_groups(text: str) -> list[str]:
    """Give each named group its role (making the group if missing); idempotent. A push
    limit chosen on the Roles screen stays, unless the new role cannot have one. Returns
    what changed, for the log."""
    changed = []
    with transaction.atomic():
        for name, role in parse_role_groups(text).items():
            group, _ = Group.objects.get_or_create(name=name)
            mapping = GroupRole.objects.filter(group=group).first()
            if mapping is None:
                GroupRole.objects.create(group=group, role=role)
                changed.append(f"{name}={role} (new)")
            elif mapping.role != role:
                was, mapping.role = mapping.role, role
                if role != Role.OPERATOR:  # a push limit is an operator's only
                    mapping.push_limited = False
                    mapping.push_registries.clear()
                mapping.save(update_fields=["role", "push_limited"])
                changed.append(f"{name}={role} (was {was})")
    return changed


def apply_role_groups_after_migrate(sender, **kwargs) -> None:
    """post_migrate receiver (for this app only, so once a migrate)."""
    if not settings.WHARF_ROLE_GROUPS:
        return
    out = kwargs.get("stdout") or sys.stdout
    for change in apply_role_groups(settings.WHARF_ROLE_GROUPS):
        if kwargs.get("verbosity", 1):
            out.write(f"Role mapping from WHARF_ROLE_GROUPS: {change}\n")


def registry_deletion_impact(registry) -> list[str]:
    """The groups whose push is limited to a registry being deleted (config.impact)."""
    limited = list(
        GroupRole.objects.filter(push_limited=True, push_registries=registry)
        .order_by("group__name")
        .values_list("group__name", flat=True)
    )
    if not limited:
        return []
    return [
        f"Push limits of {', '.join(limited)} lose this registry (a limit left with no "
        "registry lets its operators push nowhere)."
    ]


def group_role_deletion_impact(mapping: GroupRole) -> list[str]:
    """What removing a group's mapping takes from its members (config.impact)."""
    members = mapping.group.user_set.count()
    return [
        f"{count(members, 'member')} of {mapping.group.name} lose the "
        f"{mapping.get_role_display().lower()} role this group gave them (a role granted by "
        "name or through another group stays). The group itself stays."
    ]
