"""Who may do what in Wharf: three roles, each including the one below it.

- **viewer**: the Chart Store (search, charts, versions, values, README).
- **operator**: a viewer who may also start work: Sync now, Deep sync, Push chart,
  Reconcile now, Test pull.
- **admin**: every Global Configuration. Superusers are admins, always (and alone may use
  the Django admin).

A user's role is the highest of the role granted to them (``UserRole``) and those mapped
from their groups (``GroupRole``; sign-in through OIDC or LDAP mirrors the identity
provider's groups into Django's). A signed-in user with neither is a viewer, unless
``WHARF_REQUIRE_ROLE`` is on: then they hold no role and see only a page saying whom to ask.
An operator mapping may limit pushing to chosen registries; a user pushes where any of
their operator-or-higher grants lets them.

Every check in the views, the API and the commands asks this module, never
``is_superuser`` directly, so the three agree on who may do what. What a user holds is
read once (one query) and kept on the user object, so for one request.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import IntegerField, Value

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}
_CACHE = "_wharf_access"


@dataclass(frozen=True)
class Access:
    """What one user holds: a role (or None), and where they may push (None: anywhere)."""

    role: str | None
    push_registry_ids: frozenset[int] | None = None


def _highest(*roles: str | None) -> str | None:
    held = [r for r in roles if r is not None]
    return max(held, key=_RANK.__getitem__) if held else None


def _read_access(user) -> Access:
    from config.models import GroupRole, UserRole

    if user is None or not user.is_authenticated or not user.is_active:
        return Access(None, frozenset())
    if user.is_superuser:
        return Access(ADMIN, None)
    # One query: the grant, as ("grant", role, ...), and one row per (mapping, push
    # registry) of the user's groups (a mapping without registries gives one, None).
    rows = list(
        UserRole.objects.filter(user=user)
        .order_by()
        .values_list(Value("grant"), "role", Value(False), Value(None, IntegerField()))
        .union(
            GroupRole.objects.filter(group__user=user)
            .order_by()
            .values_list(Value("group"), "role", "push_limited", "push_registries"),
            all=True,
        )
    )
    granted = next((role for kind, role, _, _ in rows if kind == "grant"), None)
    mapped = [(role, limited, pk) for kind, role, limited, pk in rows if kind == "group"]
    role = _highest(granted, *(r for r, _, _ in mapped))
    if role is None and not settings.WHARF_REQUIRE_ROLE:
        role = VIEWER
    if role == ADMIN or (granted is not None and _RANK[granted] >= _RANK[OPERATOR]):
        return Access(role, None)
    pushing = [(limited, pk) for r, limited, pk in mapped if _RANK[r] >= _RANK[OPERATOR]]
    if any(not limited for limited, _ in pushing):
        return Access(role, None)
    return Access(role, frozenset(pk for _, pk in pushing if pk is not None))


def access_of(user) -> Access:
    """What ``user`` holds, read once per user object (so once per request)."""
    cached = getattr(user, _CACHE, None) if user is not None else None
    if cached is None:
        cached = _read_access(user)
        if user is not None:
            setattr(user, _CACHE, cached)
    return cached


def forget(user) -> None:
    """Drop what was read for ``user`` (after their grants or groups changed)."""
    if user is not None and hasattr(user, _CACHE):
        delattr(user, _CACHE)


def role_of(user) -> str | None:
    """The role a user acts with, or None (anonymous, inactive, or no role at all)."""
    return access_of(user).role


def allows(user, role: str) -> bool:
    """Whether ``user`` holds ``role`` or a higher one."""
    held = role_of(user)
    return held is not None and _RANK[held] >= _RANK[role]


def push_registry_ids(user) -> frozenset[int] | None:
    """The registries ``user`` may push to: None for every one (a set, maybe empty, else).
    Whether a registry takes pushes at all (``push_helm``) is the registry's own rule."""
    if not allows(user, OPERATOR):
        return frozenset()
    return access_of(user).push_registry_ids


def can_push(user, registry) -> bool:
    """Whether ``user`` may push charts to ``registry``."""
    if not allows(user, OPERATOR):
        return False
    allowed = push_registry_ids(user)
    return allowed is None or (registry is not None and registry.pk in allowed)


def template_context(request) -> dict:
    """``may.viewer``, ``may.operator``, ``may.admin`` for templates (a context processor):
    buttons a user may not use are not shown."""
    user = getattr(request, "user", None)
    return {"may": {role: allows(user, role) for role in ROLES}}


def admin_usernames(limit: int = 10) -> list[str]:
    """Who holds the admin role (superusers, users granted it, members of admin groups): the
    people a user without a role is told to ask."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    admins = get_user_model().objects.filter(
        Q(is_superuser=True) | Q(wharf_role__role=ADMIN) | Q(groups__wharf_role__role=ADMIN),
        is_active=True,
    )
    return list(admins.order_by("username").values_list("username", flat=True).distinct()[:limit])
