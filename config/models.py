"""The audit log (who changed which Global Configuration, when, which fields) and the
roles granted to users and groups."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        DELETE = "delete", "Deleted"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept beside the foreign key so the entry still says who after the user is gone.
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200)
    # {"field": [old, new]}; a secret field holds only the word "changed".
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.username or 'system'} {self.action} {self.object_type} {self.object_repr}"


# --- roles (config/roles.py reads these) ---------------------------------------------


class Role(models.TextChoices):
    """The three roles, lowest first (the names match config.roles)."""

    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


class UserRole(models.Model):
    """A role granted to one user by name (beside whatever their groups give them)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wharf_role"
    )
    role = models.CharField(max_length=10, choices=Role.choices)

    class Meta:
        ordering = ["user__username"]
        verbose_name = "user role"

    def __str__(self) -> str:
        return f"{self.user.get_username()}: {self.get_role_display()}"

    def clean(self):
        if self.user_id is not None and self.user.is_superuser:
            raise ValidationError(
                {
                    "user": f"{self.user.get_username()} is a superuser, an admin always: "
                    "there is no role to grant."
                }
            )


class GroupRole(models.Model):
    """A role for every member of a group (groups come from sign-in through OIDC or LDAP,
    mirrored into Django's groups, or are made by hand). An operator mapping may limit
    pushing to chosen registries (``push_limited``: a limit whose registries are all deleted
    lets its members push nowhere, not everywhere)."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="wharf_role")
    role = models.CharField(max_length=10, choices=Role.choices)
    push_limited = models.BooleanField(
        "Limit push to chosen registries",
        default=False,
        help_text="Operators of this group push charts only to the registries ticked below.",
    )
    push_registries = models.ManyToManyField(
        "registries.Registry", blank=True, related_name="+", verbose_name="push registries"
    )

    class Meta:
        ordering = ["group__name"]
        verbose_name = "group role"

    def __str__(self) -> str:
        return f"{self.group.name}: {self.get_role_display()}"

    def validate_mapping(self, group_name: str, registries) -> None:
        """The rules of a mapping that Django's field checks do not cover (the group is
        named, not chosen, and the push registries are many-to-many): one mapping a group,
        push limits only for operators and only to registries that take charts."""
        errors: dict[str, list[str]] = {}
        clash = GroupRole.objects.filter(group__name=group_name).exclude(pk=self.pk).first()
        if clash is not None:
            errors["group_name"] = [
                f"{group_name} is mapped already (to {clash.get_role_display()}): change "
                "that mapping instead."
            ]
        try:
            validate_push_registries(self.role, self.push_limited, registries)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if errors:
            raise ValidationError(errors)


def validate_push_registries(role: str, limited: bool, registries) -> None:
    """Push limits mean something only for operators: viewers never push, admins push
    everywhere (they could lift the limit themselves); and only registries that take
    charts can be chosen."""
    if not limited:
        if registries:
            raise ValidationError(
                {"push_limited": "Tick this to limit pushing to the registries ticked below."}
            )
        return
    if role == Role.VIEWER:
        raise ValidationError(
            {"push_limited": "Viewers cannot push: choose Operator to let this group push."}
        )
    if role == Role.ADMIN:
        raise ValidationError(
            {"push_limited": "Admins push to every registry: there is nothing to limit."}
        )
    unable = sorted(r.name for r in registries if not r.push_helm)
    if unable:
        raise ValidationError(
            {
                "push_registries": f"{', '.join(unable)} cannot take charts: tick “Push helm "
                "packages” on the registry first."
            }
        )
