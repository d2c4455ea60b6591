"""Admin pieces shared by every app: audited saves, secrets kept out of sight."""

from django.contrib import admin

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
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        if change:
            audit.record(
                request.user, AuditEntry.Action.UPDATE, obj,
                audit.diff(obj, before, audit.snapshot(obj)),
            )  # fmt: skip
        else:
            audit.record(request.user, AuditEntry.Action.CREATE, obj)

    def delete_model(self, request, obj):
        audit.record(request.user, AuditEntry.Action.DELETE, obj, {})
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
