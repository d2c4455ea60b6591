"""Admin pieces shared by every app: audited saves, secrets kept out of sight."""

from django.contrib import admin
from django.db import transaction

from config import audit
from config.models import AuditEntry


class AuditedAdmin(admin.ModelAdmin):
    """Admin edits land in the audit log like edits on the screens; secret fields are
    excluded from every admin form (they are changed on the screens, never shown)."""

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
