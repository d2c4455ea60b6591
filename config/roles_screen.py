"""The Roles screen (Global Configurations, admins only): roles granted to users and roles
mapped from groups, each with its add/change/remove, on the generic object views.

The rules live in config/models.py (``UserRole.clean``, ``GroupRole.validate_mapping``), so
the API and the admin share them; the forms only name the group and pass the choices on.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q
from django.shortcuts import render
from django.urls import reverse

from config.forms import ModelRulesFormMixin, PkChoicesField, StyledFormMixin
from config.models import GroupRole, UserRole
from config.rolesetup import parse_role_groups
from config.views import ObjectDeleteView, ObjectEditView, ObjectListView
from registries.models import Registry

# --- forms -------------------------------------------------------------------------------


class UserRoleForm(ModelRulesFormMixin, StyledFormMixin, forms.ModelForm):
    class Meta:
        model = UserRole
        fields = ["user", "role"]
        help_texts = {
            "role": "Viewer: the Chart Store. Operator: also Sync now, Push chart, Reconcile "
            "now and Test pull. Admin: also every Global Configuration.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        granted = UserRole.objects.exclude(pk=self.instance.pk).values("user")
        users = get_user_model().objects.filter(is_active=True, is_superuser=False)
        users = users.exclude(pk__in=granted)  # a superuser is an admin always
        self.fields["user"].queryset = users.order_by("username")
        self.fields["user"].empty_label = None


class GroupRoleForm(ModelRulesFormMixin, StyledFormMixin, forms.ModelForm):
    group_name = forms.CharField(
        label="Group",
        max_length=Group._meta.get_field("name").max_length,
        help_text="The group's name as the identity provider sends it (the OIDC groups claim, "
        "the LDAP group's name); made here if nobody of it has signed in yet.",
    )
    push_registries = PkChoicesField(
        queryset=Registry.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Push registries",
    )

    class Meta:
        model = GroupRole
        fields = ["group_name", "role", "push_limited", "push_registries"]
        help_texts = UserRoleForm.Meta.help_texts

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["group_name"].initial = self.instance.group.name
        # Registries that take charts, and any chosen before they stopped taking them.
        chosen = (
            self.instance.push_registries.all() if self.instance.pk else Registry.objects.none()
        )
        self.fields["push_registries"].queryset = Registry.objects.filter(
            Q(push_helm=True) | Q(pk__in=chosen.values("pk"))
        ).order_by("name")

    def clean_group_name(self) -> str:
        return self.cleaned_data["group_name"].strip()

    def clean(self):
        cleaned = super().clean()
        if "group_name" in cleaned and "role" in cleaned:
            self.instance.role = cleaned["role"]
            self.instance.push_limited = cleaned.get("push_limited", False)
            try:
                self.instance.validate_mapping(
                    cleaned["group_name"], cleaned.get("push_registries") or []
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    for message in messages:
                        self.add_error(field, message)
        return cleaned

    def save(self, commit: bool = True):
        mapping = super().save(commit=False)
        mapping.group, _ = Group.objects.get_or_create(name=self.cleaned_data["group_name"])
        mapping.save()
        self.save_m2m()
        return mapping


# --- views -------------------------------------------------------------------------------


class RoleScreen:
    """Both kinds of roles share the one Roles page as their list."""

    screen_title = "Roles"

    def url_of(self, action: str, *args) -> str:
        if action == "list":
            return reverse("config:roles")
        return super().url_of(action, *args)  # type: ignore[misc]


class RoleListView(RoleScreen, ObjectListView):
    model = UserRole
    template_name = "roles.html"

    def get(self, request):
        grants = UserRole.objects.select_related("user")
        mappings = (
            GroupRole.objects.select_related("group")
            .annotate(member_count=Count("group__user"))
            .prefetch_related(
                Prefetch("push_registries", queryset=Registry.objects.order_by("name"))
            )
        )
        context = {
            **self.screen_context(),
            "require_role": settings.WHARF_REQUIRE_ROLE,
            "seeded": set(parse_role_groups(settings.WHARF_ROLE_GROUPS)),
            "grants": grants,
            "mappings": mappings,
            "group_add_url": reverse("config:grouprole_add"),
        }
        return render(request, self.template_name, context)


class UserRoleEditView(RoleScreen, ObjectEditView):
    model = UserRole
    form_class = UserRoleForm
    template_name = "roles_form.html"


class UserRoleDeleteView(RoleScreen, ObjectDeleteView):
    model = UserRole


class GroupRoleEditView(RoleScreen, ObjectEditView):
    model = GroupRole
    form_class = GroupRoleForm
    template_name = "roles_form.html"


class GroupRoleDeleteView(RoleScreen, ObjectDeleteView):
    model = GroupRole
