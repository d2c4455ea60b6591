"""One JSON shape for every API error: ``{"detail": "...", "errors": {field: [messages]}}``.

``errors`` is empty unless fields are at fault; problems that belong to no single field are
under ``"non_field_errors"``. A model's ``ValidationError`` (its ``full_clean()`` rules, the
same the forms show) comes out in the same shape as the serializer's own.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

NON_FIELD = "non_field_errors"
INVALID = "Some fields are not valid: see errors."


class Conflict(exceptions.APIException):
    """A rule that refuses the request now (a refused push, a delete that would break)."""

    status_code = 409
    default_detail = "This cannot be done now."


def flatten(detail) -> dict[str, list[str]]:
    """DRF's error detail (dicts and lists, nested) as ``{field: [messages]}``."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for name, value in detail.items():
            for inner, messages in flatten(value).items():
                key = str(name) if inner == NON_FIELD else f"{name}.{inner}"
                out.setdefault(key, []).extend(messages)
        return out
    if isinstance(detail, list | tuple):
        out = {}
        for item in detail:
            for key, messages in flatten(item).items():
                out.setdefault(key, []).extend(messages)
        return out
    return {NON_FIELD: [str(detail)]}


def to_drf(exc: DjangoValidationError) -> exceptions.ValidationError:
    return exceptions.ValidationError(as_serializer_error(exc))


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = to_drf(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": INVALID, "errors": flatten(response.data)}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        response.data = {"detail": str(detail or response.status_text), "errors": {}}
    return response
