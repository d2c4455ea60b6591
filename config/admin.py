"""Admin pieces shared by every app: audited saves, secrets kept out of sight, model rules."""

from django import forms
from django.contrib import admin
from django.db import transaction

from config import audit
from config.forms import ModelRulesFormMixin
from config.models import AuditEntry


class RulesAdminForm(ModelRulesFormMixin, forms.ModelForm):
    """An admin form whose rules are the model's ``clean()``, as on Wharf's own forms.

    The admin leaves secrets out, so a rule that needs one counts the stored value; one that
    is still missing (a new private registry has no password yet) is named above the form.
    """

    def hidden_field_error(self, field: str, message: str) -> str:
        text = super().hidden_field_error(field, message)
        if field in getattr(self._meta.model, "audit_secret_fields", ()):
            text += " The admin never takes secrets: set it on Wharf's own page."
        return text


class AuditedAdmin(admin.ModelAdmin):
    """Admin edits land in the audit log like edits on the screens, and obey the models'
    rules (``RulesAdminForm``); secret fields are excluded from every admin form (they are
    changed on the screens, never shown)."""

    form = RulesAdminForm

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
