"""Recording changes to Global Configurations in the audit log, secrets masked.

Models opt in by naming their secret fields in ``audit_secret_fields``; those
fields only ever appear in the log as "changed", never with a value.
"""

from typing import Any

from django.db import models

from config.models import AuditEntry

SECRET_CHANGED = "changed"


def snapshot(obj: models.Model) -> dict[str, Any]:
    """Field values of ``obj`` as JSON-friendly data, for comparing before and after."""
    data = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or getattr(field, "auto_now", False):
            continue
        if getattr(field, "auto_now_add", False):
            continue
        value = field.value_from_object(obj)
        data[field.name] = (
            value if isinstance(value, str | int | bool | list | type(None)) else str(value)
        )
    return data


def diff(obj: models.Model, before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    secret = set(getattr(obj, "audit_secret_fields", ()))
    changes: dict[str, list] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        changes[name] = [SECRET_CHANGED] if name in secret else [old, new]
    return changes


def record(user, action: str, obj: models.Model, changes: dict | None = None) -> AuditEntry | None:
    """Write one audit entry; an update that changed nothing writes none."""
    if action == AuditEntry.Action.UPDATE and not changes:
        return None
    if action == AuditEntry.Action.CREATE and changes is None:
        changes = diff(obj, {}, snapshot(obj))
    authenticated = user is not None and user.is_authenticated
    return AuditEntry.objects.create(
        user=user if authenticated else None,
        username=user.get_username() if authenticated else "",
        action=action,
        object_type=str(obj._meta.verbose_name),
        object_id=str(obj.pk or ""),
        object_repr=str(obj)[:200],
        changes=changes or {},
    )


def record_save(user, obj: models.Model, before: dict[str, Any] | None) -> AuditEntry | None:
    """Log a save: ``before`` is the object's snapshot before the change, None for a new object."""
    if before is None:
        return record(user, AuditEntry.Action.CREATE, obj)
    return record(user, AuditEntry.Action.UPDATE, obj, diff(obj, before, snapshot(obj)))


def record_delete(user, obj: models.Model) -> AuditEntry | None:
    return record(user, AuditEntry.Action.DELETE, obj, {})
