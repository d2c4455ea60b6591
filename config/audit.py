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
def _models_by_type() -> dict[str, type[models.Model]]:
    """Each logged object type (a model's verbose name) and its model."""
    return {str(model._meta.verbose_name): model for model in apps.get_models()}


def _hidden(model: type[models.Model] | None) -> frozenset[str]:
    """A model's bookkeeping fields, which the log does not show."""
    if model is None:
        return frozenset()
    return frozenset(
        f.name
        for f in model._meta.concrete_fields
        if is_bookkeeping(f) and not isinstance(f, models.BinaryField)
    )


def _foreign_key(model: type[models.Model] | None, name: str) -> models.Field | None:
    if model is None:
        return None
    field = next((f for f in model._meta.concrete_fields if f.name == name), None)
    return field if field is not None and field.is_relation else None


def show_changes(entries: list[AuditEntry]) -> None:
    """Give each entry ``shown_changes``: its changed fields as the log shows them, without
    bookkeeping fields (which entries written before they were left out may hold), and with
    the ids older entries logged for foreign keys shown as names (one query per model)."""
    by_type = _models_by_type()
    rows: list[list[tuple[str, Any, models.Field | None]]] = []
    wanted: dict[Any, set[int]] = {}
    for entry in entries:
        model = by_type.get(entry.object_type)
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        row = []
        for name, change in changes.items():
            if name in _hidden(model):
                continue
            field = _foreign_key(model, name) if isinstance(change, list) else None
            if field is not None:
                ids = {v for v in change if isinstance(v, int) and not isinstance(v, bool)}
                wanted.setdefault(field.related_model, set()).update(ids)
            row.append((name, change, field))
        rows.append(row)
    names = {
        related: {pk: str(obj) for pk, obj in related._default_manager.in_bulk(ids).items()}
        for related, ids in wanted.items()
        if ids
    }

    def named(related, value):
        if not isinstance(value, int) or isinstance(value, bool) or related not in names:
            return value
        return names[related].get(value, f"{related._meta.verbose_name} {value} (deleted)")

    for entry, row in zip(entries, rows, strict=True):
        shown = [
            (name, change if field is None else [named(field.related_model, v) for v in change])
            for name, change, field in row
        ]
        setattr(entry, "shown_changes", shown)  # noqa: B010  (a display attribute, not a field)
