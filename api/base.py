"""What every API view shares: no sign-in redirect (the API answers 401 itself), the role
check, and the audit log naming the token a write came with."""

from __future__ import annotations

import contextlib

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models, transaction
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

from api.authentication import token_of
from api.errors import Conflict, to_drf
from config import audit
from config.roles import ADMIN, OPERATOR


class ApiViewMixin:
    """Mixed into every API view (first, so its ``as_view`` wins)."""

    # For the URL walk of tests/config/test_every_url.py: API views are walked, per role and
    # for tokens, by tests/api/test_permissions.py.
    required_role = "api"
    read_role = OPERATOR
    write_role = ADMIN
    _audit_actor: contextlib.ExitStack | None = None

    @classmethod
    def as_view(cls, *args, **kwargs):
        view = super().as_view(*args, **kwargs)  # type: ignore[misc]
        # Not LoginRequiredMiddleware's redirect to the sign-in page: a 401 in JSON.
        view.login_required = False
        return view

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        bad = sorted(k for k, v in request.query_params.lists() if any("\x00" in x for x in v))
        if bad:
            raise ValidationError({name: ["Null characters are not allowed."] for name in bad})
        token = token_of(request)
        if token is not None and self._audit_actor is None:
            self._audit_actor = contextlib.ExitStack()
            self._audit_actor.enter_context(audit.acting_as(token.actor))

    def dispatch(self, request, *args, **kwargs):
        # Closed whatever happens (an error DRF re-raises skips finalize_response), so the
        # actor never outlives its request in the thread.
        self._audit_actor = None
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        finally:
            if self._audit_actor is not None:
                self._audit_actor.close()
                self._audit_actor = None


def full_clean(obj: models.Model, **kwargs) -> None:
    """The model's rules (the ones the forms show), as API field errors."""
    try:
        obj.full_clean(**kwargs)
    except DjangoValidationError as exc:
        raise to_drf(exc) from None


class AuditedModelViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Create, update and delete recorded in the audit log, in the same transaction."""

    def perform_create(self, serializer):
        with transaction.atomic():
            obj = serializer.save()
            audit.record_save(self.request.user, obj, None)

    def perform_update(self, serializer):
        before = audit.snapshot(serializer.instance)
        with transaction.atomic():
            obj = serializer.save()
            audit.record_save(self.request.user, obj, before)

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                audit.record_delete(self.request.user, instance)
                instance.delete()
        except DjangoValidationError as exc:
            raise Conflict(" ".join(exc.messages)) from None
