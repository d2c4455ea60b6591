from django.contrib import admin

from charts.models import (
    Chart,
    ChartPush,
    ChartSource,
    ChartVersion,
    DiscoveryRun,
    HelmRepository,
    SkippedRepository,
    SyncRun,
)
from charts.sources import sync_helm_repository_source
from config.admin import AuditedAdmin


@admin.register(HelmRepository)
class HelmRepositoryAdmin(AuditedAdmin):
    list_display = ("name", "url", "access", "tls_mode", "active", "updated_at")
    list_filter = ("access", "active", "tls_mode")
    search_fields = ("name", "url", "username")

    def get_readonly_fields(self, request, obj=None):
        return ("name", "created_at", "updated_at") if obj else ("created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # A new repository (or a new URL) is fetched from scratch, at once.
        sync_helm_repository_source(obj, changed=not change or bool(form.changed_data))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the sync only; the admin shows it for support, nobody edits it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ChartSource)
class ChartSourceAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "last_run", "last_success_at", "lease_expires_at")
    list_filter = ("kind",)
    list_select_related = ("registry", "helm_repository", "last_run")


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = (
        "source",
        "trigger",
        "status",
        "queued_at",
        "finished_at",
        "added",
        "updated",
        "removed",
    )
    list_filter = ("status", "trigger")
    list_select_related = ("source__registry", "source__helm_repository")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DiscoveryRun)
class DiscoveryRunAdmin(ReadOnlyAdmin):
    list_display = (
        "discovery",
        "trigger",
        "status",
        "method",
        "queued_at",
        "discovered",
        "indexed",
        "added",
        "skipped",
        "vanished",
    )
    list_filter = ("status", "trigger", "method")
    list_select_related = ("discovery__registry",)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SkippedRepository)
class SkippedRepositoryAdmin(ReadOnlyAdmin):
    """Deleting one makes the next listing look at that repository again."""

    list_display = ("repository", "discovery", "reason", "checked_at")
    search_fields = ("repository",)
    list_select_related = ("discovery__registry",)


@admin.register(Chart)
class ChartAdmin(ReadOnlyAdmin):
    list_display = ("name", "source", "latest_version", "app_version", "version_count")
    search_fields = ("name", "description", "keywords")
    list_select_related = ("source__registry", "source__helm_repository")


@admin.register(ChartVersion)
class ChartVersionAdmin(ReadOnlyAdmin):
    list_display = ("chart", "version", "prerelease", "app_version", "removed_upstream_at")
    list_filter = ("prerelease",)
    search_fields = ("chart__name", "version")
    list_select_related = ("chart",)


@admin.register(ChartPush)
class ChartPushAdmin(ReadOnlyAdmin):
    list_display = ("chart_name", "version", "registry", "repository", "status", "username")
    list_filter = ("status",)
    search_fields = ("chart_name", "repository", "username")
    list_select_related = ("registry",)
    # The uploaded bytes (kept only until the push finishes) are never shown.
    exclude = ("archive", "provenance")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("archive", "provenance")

    def has_delete_permission(self, request, obj=None):
        return False
