"""Who may do what in Wharf: three roles, each including the one below it.

- **viewer**: the Chart Store (search, charts, versions, values, README).
- **operator**: a viewer who may also start work: Sync now, Deep sync, Push chart,
  Reconcile now, Test pull.
- **admin**: every Global Configuration. Superusers are admins, always (and alone may use
  the Django admin).

Every check in the views, the API and the commands asks this module, never
``is_superuser`` directly, so the three agree on who may do what.
"""

from __future__ import annotations

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def role_of(user) -> str | None:
    """The role a user acts with, or None (anonymous, inactive, or no role at all)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    return VIEWER


def allows(user, role: str) -> bool:
    """Whether ``user`` holds ``role`` or a higher one."""
    held = role_of(user)
    return held is not None and _RANK[held] >= _RANK[role]


def can_push(user, registry) -> bool:
    """Whether ``user`` may push charts to ``registry``."""
    return allows(user, OPERATOR)
