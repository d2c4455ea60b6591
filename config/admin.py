"""Admin pieces shared by every app: audited saves, secrets kept out of sight."""

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from config import audit
from config.models import AuditEntry


class AdminModelForm(forms.ModelForm):
    """The model's rules (``clean()``) may name a field this admin form leaves out (the
    secret fields): their message is shown at the top instead of failing the page."""

    def _update_errors(self, errors):
        if hasattr(errors, "error_dict"):
            mapped: dict[str, list] = {}
            for name, messages in errors.error_dict.items():
                key = name if name == NON_FIELD_ERRORS or name in self.fields else NON_FIELD_ERRORS
                mapped.setdefault(key, []).extend(messages)
            errors = ValidationError(mapped)
        super()._update_errors(errors)


class AuditedAdmin(admin.ModelAdmin):
    """Admin edits land in the audit log like edits on the screens; secret fields are
    excluded from every admin form (they are changed on the screens, never shown)."""

    form = AdminModelForm

    def get_exclude(self, request, obj=None):
        return tuple(super().get_exclude(request, obj) or ()) + tuple(
            getattr(self.model, "audit_secret_fields", ())
        )

    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record_save(request.user, obj, before)

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit.record_delete(request.user, obj)
            super().delete_model(request, obj)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "username", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("username", "object_repr")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
