"""Which role an API request needs, asked of ``config.roles`` (the pages ask it too).

A view declares ``read_role`` (GET, HEAD, OPTIONS) and ``write_role`` (everything else);
an action that differs says so in ``action_roles`` (``{"sync": OPERATOR}``).
"""

from __future__ import annotations

from rest_framework import permissions

from config.roles import ADMIN, OPERATOR, allows


class RolePermission(permissions.BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        return allows(request.user, required_role(request, view))


def required_role(request, view) -> str:
    action = getattr(view, "action", None)
    roles = getattr(view, "action_roles", {})
    if action in roles:
        return roles[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_role", OPERATOR)
    return getattr(view, "write_role", ADMIN)
