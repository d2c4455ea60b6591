"""Recording changes to Global Configurations in the audit log, secrets masked.

Models opt in by naming their secret fields in ``audit_secret_fields``; those
fields only ever appear in the log as "changed", never with a value. A foreign key is
logged by the name of what it points to; fields no one edits (leases, heartbeats, run
bookkeeping, cached tokens: ``editable=False``) are Wharf's own and not logged, nor shown
from entries written before they were left out.

Who: the signed-in user, or, for work no user does on a page (a management command),
the operator named with :func:`acting_as` ("push_chart by os:root"); else "system".
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from functools import cache
from typing import Any

from django.apps import apps
from django.db import models

from config.models import AuditEntry

SECRET_CHANGED = "changed"

_operator: contextvars.ContextVar[str] = contextvars.ContextVar("audit_operator", default="")


@contextlib.contextmanager
def acting_as(operator: str) -> Iterator[None]:
    """Entries recorded inside say ``operator`` did it (a command's "push_chart by alice")."""
    token = _operator.set(operator)
    try:
        yield
    finally:
        _operator.reset(token)


def is_bookkeeping(field: models.Field) -> bool:
    """A field Wharf keeps for itself (no form edits it): a lease, a heartbeat, a cache.
    Binary fields are never logged as values either; a model logs a summary of them."""
    return not field.editable


def snapshot(obj: models.Model) -> dict[str, Any]:
    """Field values of ``obj`` as JSON-friendly data, for comparing before and after."""
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or getattr(field, "auto_now", False):
            continue
        if getattr(field, "auto_now_add", False) or is_bookkeeping(field):
            continue
        if field.is_relation:
            related = getattr(obj, field.name, None)  # its name, not its id
            data[field.name] = None if related is None else str(related)
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
    username = user.get_username() if authenticated else ""
    return AuditEntry.objects.create(
        user=user if authenticated else None,
        username=(_operator.get() or username)[:150],
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


@cache
def _hidden_by_type() -> dict[str, frozenset[str]]:
    """Per logged object type (a model's verbose name), the bookkeeping fields not shown."""
    return {
        str(model._meta.verbose_name): frozenset(
            f.name
            for f in model._meta.concrete_fields
            if is_bookkeeping(f) and not isinstance(f, models.BinaryField)
        )
        for model in apps.get_models()
    }


def shown_changes(entry: AuditEntry) -> list[tuple[str, list]]:
    """The entry's changed fields as the log shows them: without bookkeeping fields (which
    entries written before they were left out may hold)."""
    hidden = _hidden_by_type().get(entry.object_type, frozenset())
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    return [(name, change) for name, change in changes.items() if name not in hidden]
