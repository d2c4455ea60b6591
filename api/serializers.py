"""What the API reads and writes. Every write runs the model's ``full_clean()`` (the rules the
forms show); secrets are write-only, and one left out or blank keeps the stored one."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from api.base import full_clean
from api.errors import to_drf
from charts.models import Chart, ChartPush, ChartSource, ChartVersion, HelmRepository, SyncRun
from clusters.models import Cluster, Environment, PullSecretTarget, RegistryAccess
from config.connections import ConnectionSettings
from config.forms import ConnectionFieldsForm
from registries.models import RateLimitBudget, Registry

CONNECTION_FIELDS = list(ConnectionFieldsForm.CONNECTION_FIELDS)
CONNECTION_SECRETS = tuple(ConnectionSettings.connection_secret_fields)


class NameField(serializers.SlugRelatedField):
    """Another object by its name; a name no object could have is "not found", not a crash
    (PostgreSQL refuses NUL in a query)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "name")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\x00" in data or len(data) > 255:
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data)[:50])
        return super().to_internal_value(data)


class ModelRulesSerializer(serializers.ModelSerializer):
    """Builds the instance from the input, then lets the model check it."""

    secret_fields: tuple[str, ...] = ()
    # Fields the serializer takes but the model does not (handled by the view).
    extra_inputs: tuple[str, ...] = ()
    # The name of an object stays what it was created with.
    fixed_after_create: tuple[str, ...] = ("name",)

    def get_extra_kwargs(self):
        extra = super().get_extra_kwargs()
        for name in self.secret_fields:
            extra.setdefault(name, {}).update(
                write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
            )
        return extra

    def validate(self, attrs):
        instance = self.instance if self.instance is not None else self.Meta.model()
        editing = instance.pk is not None
        for name in self.fixed_after_create:
            if editing and name in attrs and attrs[name] != getattr(instance, name):
                raise serializers.ValidationError({name: ["This cannot be changed once set."]})
        many = {f.name for f in self.Meta.model._meta.many_to_many}
        for name, value in attrs.items():
            if name in self.extra_inputs or name in many:
                continue
            if name in self.secret_fields and not value and editing:
                continue  # a blank secret keeps the stored one
            setattr(instance, name, value)
        full_clean(instance, validate_unique=True)
        self.built = instance
        return attrs

    def create(self, validated_data):
        self.built.save()
        return self.built

    def update(self, instance, validated_data):
        self.built.save()
        return self.built


class RateLimitBudgetSerializer(serializers.ModelSerializer):
    class Meta:
        model = RateLimitBudget
        fields = [
            "limit", "remaining", "window_seconds", "resets_at", "throttled_until", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class RegistrySerializer(ModelRulesSerializer):
    secret_fields = ("secret", *CONNECTION_SECRETS)
    extra_inputs = ("is_default",)
    is_default = serializers.BooleanField(
        required=False,
        help_text="True makes this the default registry (the first registry is the default).",
    )
    rate_limit_budget = RateLimitBudgetSerializer(
        read_only=True,
        allow_null=True,
        help_text="What the registry last announced of its rate limit (null: nothing yet).",
    )

    class Meta:
        model = Registry
        fields = [
            "id", "name", "provider", "registry_type", "url", "auth_type", "username", "secret",
            *CONNECTION_FIELDS,
            "push_images", "push_helm", "chart_source", "repositories", "repository_scope",
            "repository_prefixes", "is_default", "plain_http", "rate_limit_budget",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "plain_http", "created_at", "updated_at"]


class HelmRepositorySerializer(ModelRulesSerializer):
    secret_fields = ("password", *CONNECTION_SECRETS)
    source = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="Its chart source."
    )

    class Meta:
        model = HelmRepository
        fields = [
            "id", "name", "url", "access", "username", "password", *CONNECTION_FIELDS,
            "archive_hosts", "active", "source", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]


class SyncRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncRun
        fields = [
            "id", "source", "status", "trigger", "deep", "queued_at", "started_at",
            "finished_at", "error", "added", "updated", "removed", "indexed", "http_requests",
            "warnings", "skipped_count",
        ]  # fmt: skip
        read_only_fields = fields


class ChartSourceSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    location = serializers.CharField(read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)
    registry = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    helm_repository = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    last_run = SyncRunSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ChartSource
        fields = [
            "id", "name", "kind", "location", "active", "registry", "repository",
            "helm_repository", "verified_only", "discovered", "vanished_at", "last_run",
            "last_success_at", "last_deep_sync_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SyncRequestSerializer(serializers.Serializer):
    deep = serializers.BooleanField(
        default=False, help_text="Read every version again, not only what changed."
    )


class ChartSerializer(serializers.ModelSerializer):
    source = serializers.PrimaryKeyRelatedField(read_only=True)
    source_name = serializers.CharField(source="source.name", read_only=True)

    class Meta:
        model = Chart
        fields = [
            "id", "name", "source", "source_name", "latest_version", "app_version",
            "description", "keywords", "latest_trust", "version_count", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ChartVersionSerializer(serializers.ModelSerializer):
    files_state = serializers.CharField(read_only=True)

    class Meta:
        model = ChartVersion
        fields = [
            "id", "version", "prerelease", "app_version", "description", "created", "digest",
            "archive_url", "archive_digest", "archive_size", "files_state",
            "trust_status", "trust_key", "trust_method", "trust_detail", "trust_checked_at",
        ]  # fmt: skip
        read_only_fields = fields


class ChartVersionDetailSerializer(ChartVersionSerializer):
    values = serializers.CharField(source="values_yaml", read_only=True)

    class Meta(ChartVersionSerializer.Meta):
        fields = [
            *ChartVersionSerializer.Meta.fields, "metadata", "values", "readme",
            "values_schema", "files_error",
        ]  # fmt: skip
        read_only_fields = fields


class ChartPushSerializer(serializers.ModelSerializer):
    registry = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ChartPush
        fields = [
            "id", "registry", "username", "chart_name", "version", "repository", "tag",
            "overwrite", "archive_digest", "archive_size", "has_provenance", "status",
            "queued_at", "started_at", "finished_at", "error", "manifest_digest", "note",
        ]  # fmt: skip
        read_only_fields = fields


class ChartPushRequestSerializer(serializers.Serializer):
    """The push page's inputs (charts.forms.ChartPushForm checks them)."""

    archive = serializers.FileField(help_text="The .tgz that “helm package” wrote.")
    provenance = serializers.FileField(required=False, help_text="Its .prov file, if signed.")
    prefix = serializers.CharField(required=False, allow_blank=True, default="")
    overwrite = serializers.BooleanField(required=False, default=False)


class ClusterSerializer(ModelRulesSerializer):
    secret_fields = ("token",)

    class Meta:
        model = Cluster
        fields = [
            "id", "name", "api_url", "token", "ca_certificate", "skip_tls_verify", "active",
            "health", "health_message", "health_checked_at", "last_reconciled_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "health", "health_message", "health_checked_at", "last_reconciled_at",
            "created_at", "updated_at",
        ]  # fmt: skip


class EnvironmentSerializer(ModelRulesSerializer):
    cluster = NameField(queryset=Cluster.objects.all())

    class Meta:
        model = Environment
        fields = ["id", "name", "cluster", "namespace", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class RegistryAccessSerializer(ModelRulesSerializer):
    fixed_after_create = ()
    clusters = NameField(queryset=Cluster.objects.all(), many=True, required=False)

    class Meta:
        model = RegistryAccess
        fields = [
            "mode", "all_clusters", "clusters", "namespaces", "excluded_namespaces",
            "namespace_selector", "credentials", "secret_name",
            "add_to_default_service_account", "service_accounts", "service_account_names",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = ["updated_at"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        # A many-to-many choice the model checks before it is saved; left out, it stays.
        kept = list(self.built.clusters.all()) if self.built.pk else []
        attrs.setdefault("clusters", kept)
        try:
            self.built.validate_clusters(attrs["clusters"])
        except DjangoValidationError as exc:
            raise to_drf(exc) from None
        return attrs

    def update(self, instance, validated_data):
        self.built.save()
        self.built.clusters.set(validated_data["clusters"])
        return self.built

    create = update  # type: ignore[assignment]


class PullSecretTargetSerializer(serializers.ModelSerializer):
    cluster = serializers.SlugRelatedField(slug_field="name", read_only=True)
    registry = serializers.SlugRelatedField(slug_field="name", read_only=True)
    checked_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = PullSecretTarget
        fields = [
            "id", "cluster", "namespace", "registry", "secret_name", "status", "error",
            "checked_at", "expires_at", "rotating_until",
        ]  # fmt: skip
        read_only_fields = fields
