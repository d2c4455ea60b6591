"""The HTTP API's resources, under ``/api/v1/``.

Who may do what (``config.roles``): a **viewer** reads the Chart Store; an **operator** also
reads the configurations (never a secret), their runs and status, and starts work (sync,
push, reconcile); an **admin** also writes configurations. Every write is in the audit log,
with the token's name when a token made it.
"""

from __future__ import annotations

from collections.abc import Mapping

import django_filters
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api import serializers as s
from api.base import ApiViewMixin, AuditedModelViewSet
from api.errors import Conflict
from charts.forms import ChartPushForm
from charts.models import (
    Chart,
    ChartPush,
    ChartSource,
    ChartVersion,
    HelmRepository,
    SyncRun,
    TrustStatus,
)
from charts.push import push_refusal, request_push
from charts.sources import sync_helm_repository_source
from charts.sync import queue_sync
from charts.uploads import PROVENANCE_MAX_BYTES, PushInputError
from clusters import pullsecrets
from clusters.models import Cluster, Environment, PullSecretTarget, ReconcileRun, RegistryAccess
from config import audit
from config.models import AuditEntry
from config.roles import OPERATOR, VIEWER, can_push
from registries.models import Registry

NAME_PATTERN = r"[A-Za-z0-9._-]+"
# A primary key in a path: digits, never more than a bigint holds.
PK_PATTERN = r"[0-9]{1,18}"


class UpsertMixin:
    """``PUT /<things>/<name>/`` creates the object when there is none by that name, and
    otherwise replaces its fields: the same request twice ends the same."""

    def update(self, request, *args, **kwargs):
        name = kwargs[self.lookup_url_kwarg or self.lookup_field]  # type: ignore[attr-defined]
        if hasattr(request.data, "dict"):  # a form or multipart body
            data = request.data.dict()
        elif isinstance(request.data, Mapping):
            data = dict(request.data)
        else:  # a JSON list, string, number or null: DRF's own words for it
            raise exceptions.ValidationError(
                {"non_field_errors": ["Invalid data. Expected a dictionary, but got "
                                      f"{type(request.data).__name__}."]}
            )  # fmt: skip
        if data.get("name", name) != name:
            raise exceptions.ValidationError({"name": ["Not the name in the URL."]})
        data["name"] = name
        queryset = self.filter_queryset(self.get_queryset())  # type: ignore[attr-defined]
        instance = queryset.filter(**{self.lookup_field: name}).first()  # type: ignore[attr-defined]
        partial = kwargs.get("partial", False)
        if instance is None and partial:
            raise Http404
        serializer = self.get_serializer(instance, data=data, partial=partial)  # type: ignore[attr-defined]
        serializer.is_valid(raise_exception=True)
        if instance is None:
            self.perform_create(serializer)  # type: ignore[attr-defined]
            return Response(serializer.data, status=status.HTTP_201_CREATED)
        self.perform_update(serializer)  # type: ignore[attr-defined]
        return Response(serializer.data)


# --- registries ---------------------------------------------------------------------------


class RegistryFilter(django_filters.FilterSet):
    class Meta:
        model = Registry
        fields = ["provider", "registry_type", "chart_source", "push_helm", "is_default"]


@extend_schema_view(
    update=extend_schema(description="Create the registry by this name, or replace its fields.")
)
class RegistryViewSet(UpsertMixin, AuditedModelViewSet):
    """Container/OCI registries. Secrets (``secret``, proxy and SSH passwords, the SSH key)
    are write-only; left out or blank on an update, the stored one is kept."""

    queryset = Registry.objects.select_related("rate_limit_budget")
    serializer_class = s.RegistrySerializer
    lookup_field = "name"
    lookup_value_regex = NAME_PATTERN
    filterset_class = RegistryFilter

    def perform_create(self, serializer):
        want_default = serializer.validated_data.get("is_default", False)
        with transaction.atomic():
            registry = serializer.built
            registry.is_default = not Registry.objects.exists()  # the first is the default
            registry.save()
            if want_default and not registry.is_default:
                registry.make_default()
            audit.record_save(self.request.user, registry, None)
        serializer.instance = registry

    def perform_update(self, serializer):
        registry = serializer.instance
        before = audit.snapshot(Registry.objects.get(pk=registry.pk))
        want_default = serializer.validated_data.get("is_default", False)
        with transaction.atomic():
            built = serializer.built
            # The default moves only through make_default(), never by a plain save.
            built.is_default = Registry.objects.filter(pk=built.pk, is_default=True).exists()
            built.save()
            if want_default and not built.is_default:
                built.make_default()
            audit.record_save(self.request.user, built, before)
        serializer.instance = built

    @extend_schema(
        request=s.ChartPushRequestSerializer,
        responses={202: s.ChartPushSerializer},
        description="Push a packaged chart (multipart upload), with the checks of the "
        "Push chart page; the push runs in the background: read it at /pushes/<id>/.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="pushes",
        parser_classes=[parsers.MultiPartParser],
        serializer_class=s.ChartPushRequestSerializer,
    )
    def push(self, request, name=None):
        registry = self.get_object()
        if not can_push(request.user, registry):
            raise exceptions.PermissionDenied("Your role does not allow pushing to this registry.")
        refusal = push_refusal(registry)
        if refusal:
            raise Conflict(refusal)
        length = request.META.get("CONTENT_LENGTH") or ""
        limit = settings.WHARF_CHART_PUSH_MAX_BYTES + PROVENANCE_MAX_BYTES + 64 * 1024
        if length.isdigit() and int(length) > limit:
            raise exceptions.ValidationError(
                {
                    "archive": [
                        f"The upload is {int(length):,} bytes, more than the "
                        f"{settings.WHARF_CHART_PUSH_MAX_BYTES:,} bytes a chart may be."
                    ]
                }
            )
        form = ChartPushForm(request.data, request.FILES)
        if not form.is_valid():
            raise exceptions.ValidationError(
                {
                    ("non_field_errors" if field == "__all__" else field): list(messages)
                    for field, messages in form.errors.items()
                }
            )
        try:
            push = request_push(
                registry, request.user, form.upload, overwrite=form.cleaned_data["overwrite"]
            )
        except PushInputError as exc:
            raise Conflict(str(exc)) from None
        return Response(s.ChartPushSerializer(push).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.ChartPushSerializer(many=True))
    @push.mapping.get
    def pushes(self, request, name=None):
        registry = self.get_object()
        pushes = registry.chart_pushes.defer("archive", "provenance").order_by("-queued_at", "-id")
        page = self.paginate_queryset(pushes)
        return self.get_paginated_response(s.ChartPushSerializer(page, many=True).data)

    action_roles = {"push": OPERATOR, "pushes": OPERATOR}


class ChartPushViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Pushes of charts to registries, newest first."""

    queryset = (
        ChartPush.objects.select_related("registry")
        .defer("archive", "provenance")
        .order_by("-queued_at", "-id")
    )
    lookup_value_regex = PK_PATTERN
    serializer_class = s.ChartPushSerializer
    filterset_fields = ["status"]


# --- chart repositories and sources -------------------------------------------------------


class HelmRepositoryViewSet(UpsertMixin, AuditedModelViewSet):
    """Classic Helm chart repositories (an index.yaml); the password is write-only."""

    queryset = HelmRepository.objects.select_related("source")
    serializer_class = s.HelmRepositorySerializer
    lookup_field = "name"
    lookup_value_regex = NAME_PATTERN
    filterset_fields = ["access", "active"]

    def _save(self, serializer, before):
        with transaction.atomic():
            repository = serializer.save()
            changes = audit.diff(repository, before or {}, audit.snapshot(repository))
            sync_helm_repository_source(repository, changed=before is None or bool(changes))
            audit.record_save(self.request.user, repository, before)

    def perform_create(self, serializer):
        self._save(serializer, None)

    def perform_update(self, serializer):
        self._save(
            serializer, audit.snapshot(HelmRepository.objects.get(pk=serializer.instance.pk))
        )


class ChartSourceFilter(django_filters.FilterSet):
    registry = django_filters.CharFilter(field_name="registry__name")
    helm_repository = django_filters.CharFilter(field_name="helm_repository__name")

    class Meta:
        model = ChartSource
        fields = ["kind", "registry", "helm_repository"]


class ChartSourceViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Where the Chart Store's charts come from (a registry's repository or a Helm
    repository), with their sync runs and "Sync now"."""

    queryset = ChartSource.objects.select_related(
        "registry", "helm_repository", "last_run"
    ).order_by("id")
    lookup_value_regex = PK_PATTERN
    serializer_class = s.ChartSourceSerializer
    filterset_class = ChartSourceFilter
    action_roles = {"sync": OPERATOR}

    @extend_schema(responses=s.SyncRunSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=s.SyncRunSerializer)
    def runs(self, request, pk=None):
        source = self.get_object()
        page = self.paginate_queryset(source.runs.order_by("-queued_at", "-id"))
        return self.get_paginated_response(s.SyncRunSerializer(page, many=True).data)

    @extend_schema(request=s.SyncRequestSerializer, responses={202: s.SyncRunSerializer})
    @action(detail=True, methods=["post"], serializer_class=s.SyncRequestSerializer)
    def sync(self, request, pk=None):
        """Sync now (``{"deep": true}``: a deep sync)."""
        source = self.get_object()
        body = s.SyncRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not source.is_active:
            raise Conflict(f"{source} is not active; activate it to sync it.")
        with transaction.atomic():
            run = queue_sync(
                source, trigger=SyncRun.Trigger.MANUAL, deep=body.validated_data["deep"]
            )
        run = run or source.runs.order_by("-queued_at", "-id").first()
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


# --- the Chart Store ------------------------------------------------------------------


class ChartFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Words in the name or description")
    verified = django_filters.BooleanFilter(
        method="only_verified", label="Only charts whose latest version a configured key verified"
    )

    class Meta:
        model = Chart
        fields = ["q", "source", "name", "verified"]

    def only_verified(self, queryset, name, value):
        # As the store page's "verified only": true keeps the verified, false keeps all.
        return queryset.filter(latest_trust=TrustStatus.VERIFIED) if value else queryset

    def search(self, queryset, name, value):
        for word in value.split()[:5]:
            queryset = queryset.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Q(keywords__icontains=word)
            )
        return queryset


class ChartViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """The Chart Store: every chart of every active source."""

    queryset = Chart.objects.in_store().select_related(
        "source__registry", "source__helm_repository"
    )
    lookup_value_regex = PK_PATTERN
    serializer_class = s.ChartSerializer
    filterset_class = ChartFilter
    read_role = VIEWER

    def get_queryset(self):
        return super().get_queryset().order_by("name", "id")


class ChartVersionViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """A store chart's versions still upstream; one version with its values and README
    (``files_state`` says whether they have been read yet)."""

    serializer_class = s.ChartVersionSerializer
    lookup_field = "version"
    lookup_value_regex = r"[^/]+"
    read_role = VIEWER
    filterset_fields = ["prerelease"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ChartVersion.objects.none()
        chart = get_object_or_404(Chart.objects.in_store(), pk=self.kwargs["chart_pk"])
        # What the store page shows: a "verified only" source hides its unverified versions.
        return ChartVersion.objects.in_store().filter(chart=chart).order_by("-created", "-id")

    def get_serializer_class(self):
        return (
            s.ChartVersionDetailSerializer
            if self.action == "retrieve"
            else super().get_serializer_class()
        )


# --- clusters, environments, access rules, status --------------------------------------


class ClusterViewSet(UpsertMixin, AuditedModelViewSet):
    """Kubernetes clusters; the bearer token is write-only."""

    queryset = Cluster.objects.all()
    serializer_class = s.ClusterSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_PATTERN
    filterset_fields = ["active", "health"]
    action_roles = {"reconcile": OPERATOR}

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def reconcile(self, request, name=None):
        """Reconcile now: mark the cluster's pull secrets pending and queue a reconcile."""
        cluster = self.get_object()
        with transaction.atomic():
            pullsecrets.request_reconcile([cluster.pk], trigger=ReconcileRun.Trigger.MANUAL)
        return Response({"detail": f"Reconciling the pull secrets of {cluster}."}, status=202)


class EnvironmentFilter(django_filters.FilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name")

    class Meta:
        model = Environment
        fields = ["cluster", "namespace"]


class EnvironmentViewSet(UpsertMixin, AuditedModelViewSet):
    queryset = Environment.objects.select_related("cluster")
    serializer_class = s.EnvironmentSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_PATTERN
    filterset_class = EnvironmentFilter


class TargetFilter(django_filters.FilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name")
    registry = django_filters.CharFilter(field_name="registry__name")

    class Meta:
        model = PullSecretTarget
        fields = ["cluster", "registry", "namespace", "status"]


class PullSecretTargetViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """The pull secrets Wharf looks after, one per cluster, namespace and registry, and
    how the last reconcile left each."""

    queryset = PullSecretTarget.objects.select_related("cluster", "registry")
    lookup_value_regex = PK_PATTERN
    serializer_class = s.PullSecretTargetSerializer
    filterset_class = TargetFilter


class RegistryAccessViewSet(ApiViewMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A registry's credential access rule ("Manage"): which clusters and namespaces get its
    pull secret. ``PUT`` writes the whole rule; a public registry has none (404)."""

    serializer_class = s.RegistryAccessSerializer
    queryset = RegistryAccess.objects.all()

    def registry(self) -> Registry:
        registry = get_object_or_404(Registry, name=self.kwargs["registry_name"])
        if registry.is_public:
            raise Http404("A public registry has no credentials to inject.")
        return registry

    def get_object(self):
        registry = self.registry()
        return RegistryAccess.objects.filter(registry=registry).first() or RegistryAccess(
            registry=registry
        )

    @extend_schema(request=s.RegistryAccessSerializer, responses=s.RegistryAccessSerializer)
    def update(self, request, *args, **kwargs):
        access = self.get_object()
        registry = access.registry
        creating = access.pk is None
        before = None if creating else audit.snapshot(access)
        before_clusters = [] if creating else sorted(c.name for c in access.clusters.all())
        affected = pullsecrets.clusters_of_registry(registry)
        serializer = self.get_serializer(access, data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            access = serializer.save()
            after_clusters = sorted(c.name for c in access.clusters.all())
            changes = audit.diff(access, before or {}, audit.snapshot(access))
            if before_clusters != after_clusters:
                changes["clusters"] = [before_clusters, after_clusters]
            action_ = AuditEntry.Action.CREATE if creating else AuditEntry.Action.UPDATE
            audit.record(request.user, action_, access, changes)
            affected |= set(access.selected_clusters().values_list("pk", flat=True))
            pullsecrets.request_reconcile(affected)
        return Response(self.get_serializer(access).data)
