from django.contrib import admin

from clusters.forms import ClusterChoiceRuleMixin
from clusters.models import (
    Cluster,
    Environment,
    PullSecretTarget,
    PullTestImage,
    PullTestRun,
    ReconcileRun,
    RegistryAccess,
)
from config.admin import AuditedAdmin, RulesAdminForm


class RegistryAccessAdminForm(ClusterChoiceRuleMixin, RulesAdminForm):
    pass


class EnvironmentInline(admin.TabularInline):
    model = Environment
    form = RulesAdminForm
    extra = 0


@admin.register(Cluster)
class ClusterAdmin(AuditedAdmin):
    list_display = ("name", "api_url", "active", "skip_tls_verify", "last_reconciled_at")
    list_filter = ("active",)
    search_fields = ("name", "api_url")
    readonly_fields = ("last_reconciled_at", "created_at", "updated_at")
    inlines = [EnvironmentInline]

    def has_delete_permission(self, request, obj=None):
        # Not while a reconcile runs: it could re-create a secret the delete removes.
        if obj is not None and obj.lease_held():
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk delete would skip the lease
        return actions


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    list_display = ("name", "cluster", "namespace")
    list_filter = ("cluster",)
    search_fields = ("name", "namespace")


@admin.register(RegistryAccess)
class RegistryAccessAdmin(AuditedAdmin):
    form = RegistryAccessAdminForm
    list_display = ("registry", "mode", "all_clusters", "credentials", "secret_name")
    filter_horizontal = ("clusters",)
    readonly_fields = ("ecr_token_expires_at", "credential_replaced_at")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        from clusters import pullsecrets

        pullsecrets.request_reconcile(pullsecrets.clusters_of_registry(form.instance.registry))


@admin.register(PullSecretTarget)
class PullSecretTargetAdmin(admin.ModelAdmin):
    """Status is written by the reconciliation; the admin only shows it."""

    list_display = ("cluster", "namespace", "registry", "secret_name", "status", "last_checked")
    list_filter = ("status", "cluster", "registry")
    search_fields = ("namespace", "secret_name", "error")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ReconcileRun)
class ReconcileRunAdmin(admin.ModelAdmin):
    """Runs are written by the workers; the admin only shows them."""

    list_display = ("cluster", "trigger", "status", "queued_at", "finished_at", "failed_targets")
    list_filter = ("status", "trigger")
    list_select_related = ("cluster",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PullTestImage)
class PullTestImageAdmin(AuditedAdmin):
    """The image each registry's pull tests pull (the model checks it is on its host)."""

    list_display = ("registry", "image", "updated_at")
    list_select_related = ("registry",)


@admin.register(PullTestRun)
class PullTestRunAdmin(admin.ModelAdmin):
    """Pull tests are written by the workers; the admin only shows them."""

    list_display = ("cluster", "target", "status", "queued_at", "finished_at", "pulled")
    list_filter = ("status",)
    list_select_related = ("cluster", "target")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
