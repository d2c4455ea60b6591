from django import forms
from django.contrib import admin

from config.admin import AuditedAdmin, RulesAdminForm
from registries.forms import RepositoryListField
from registries.models import Registry


class RegistryAdminForm(RulesAdminForm):
    """The repository list as one path per line, as on Wharf's own form (not raw JSON)."""

    repositories = RepositoryListField()
    repository_scope = forms.ChoiceField(
        label="Repositories to index", choices=Registry.Scope.choices, required=False
    )
    repository_prefixes = RepositoryListField(label="Path prefixes", help_text="")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["repositories"].prepare_initial(self.initial)
        self.fields["repository_prefixes"].prepare_initial(self.initial, "repository_prefixes")


@admin.register(Registry)
class RegistryAdmin(AuditedAdmin):
    form = RegistryAdminForm
    list_display = (
        "name", "provider", "url", "registry_type", "push_images", "push_helm",
        "chart_source", "is_default", "has_credentials", "updated_at",
    )  # fmt: skip
    list_filter = ("provider", "registry_type", "chart_source", "push_helm", "is_default")
    search_fields = ("name", "url", "username")
    readonly_fields = ("name", "is_default", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # The name is fixed once created; the default moves only through "Make default".
        return self.readonly_fields if obj else ("is_default", "created_at", "updated_at")

    @admin.display(boolean=True, description="Credentials stored")
    def has_credentials(self, obj) -> bool:
        return bool(obj.secret) or obj.auth_type == "iam-role"

    def has_delete_permission(self, request, obj=None):
        # The default registry stays while others exist (the model refuses it too).
        if obj is not None and obj.deletion_blocker():
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # A bulk delete would bypass the default-registry rule.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
