"""Cluster and environment screens, registry credential access ("Manage"), live status."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from clusters import pullsecrets, pulltest
from clusters.connectivity import check_connection
from clusters.forms import ClusterForm, EnvironmentForm, RegistryAccessForm
from clusters.models import Cluster, Environment, PullSecretTarget, ReconcileRun, RegistryAccess
from config import audit, roles
from config.badges import badge_of
from config.models import AuditEntry
from config.params import id_param
from config.views import (
    AdminRequiredMixin,
    ObjectDeleteView,
    ObjectEditView,
    ObjectListView,
    OperatorRequiredMixin,
    Polled,
    poll_response,
)
from registries.models import Registry

RECONCILES_SHOWN = 10


def _count_per_cluster(queryset):
    """A correlated count per cluster: no join of environments by targets on the list."""
    counted = (
        queryset.filter(cluster=OuterRef("pk"))
        .order_by()
        .values("cluster")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _status_counts():
    return {
        f"targets_{key.replace('-', '_')}": _count_per_cluster(
            PullSecretTarget.objects.filter(status=key)
        )
        for key in PullSecretTarget.Status.values
    }


def status_context(targets, *, status_url: str, columns: str) -> dict:
    """The status table of some targets; polls every 2 s while any is pending."""
    targets = list(targets)
    pending = any(t.status == PullSecretTarget.Status.PENDING for t in targets)
    testing = pulltest.attach_results(targets)  # each row's last pull test
    now = timezone.now()
    for target in targets:
        target.expiry_warning = pullsecrets.expiry_warning(target, now)
    return {
        "targets": targets,
        "pending": pending,
        "testing": testing,
        "node_credentials_note": pulltest.NODE_CREDENTIALS_NOTE,
        "columns": columns,
        "poll": Polled(
            "target-status", status_url, "clusters/partials/_status.html", pending or testing
        ),
    }


def render_status(request, targets, *, status_url: str, columns: str):
    context = status_context(targets, status_url=status_url, columns=columns)
    return poll_response(request, not context["poll"].active, context)


def reconciles_context(cluster: Cluster) -> dict:
    """The cluster's recent reconciles; polls every 2 s while one is queued or running."""
    runs = list(cluster.reconciles.all()[:RECONCILES_SHOWN])
    going = any(not run.finished for run in runs)
    url = reverse("clusters:reconcilerun_list", args=[cluster.pk])
    return {
        "reconciles": runs,
        "reconciles_poll": Polled("reconciles", url, "clusters/partials/_reconciles.html", going),
    }


# --- clusters ------------------------------------------------------------------


class ClusterListView(ObjectListView):
    """Admins change clusters here; operators see them read-only, with "Test all pulls" and
    "Reconcile now"."""

    required_role = roles.OPERATOR
    model = Cluster
    queryset = Cluster.objects.annotate(
        environment_count=_count_per_cluster(Environment.objects.all()), **_status_counts()
    )
    template_name = "clusters/cluster_list.html"

    def get_queryset(self):
        clusters = list(super().get_queryset())
        for cluster in clusters:
            # Each status with targets, with its declared badge: "3 in sync", "1 failed".
            cluster.target_badges = [
                (shown, f"{count} {shown.label.lower()}")
                for key in PullSecretTarget.Status.values
                if (count := getattr(cluster, f"targets_{key.replace('-', '_')}"))
                and (shown := badge_of(PullSecretTarget(status=key)))
            ]
        return clusters


class ClusterEditView(ObjectEditView):
    model = Cluster
    form_class = ClusterForm
    template_name = "clusters/cluster_form.html"

    def context(self, request, form, obj, **extra) -> dict:
        context = super().context(request, form, obj, **extra)
        if obj.pk:
            context["environments"] = obj.environments.all()
            context |= status_context(
                obj.targets.select_related("registry"),
                status_url=reverse("clusters:cluster_status", args=[obj.pk]),
                columns="cluster",
            )
            context |= reconciles_context(obj)
        return context

    def check_connection(self, obj):
        result = check_connection(obj)
        if obj.same_connection_as_stored():
            # A check of the saved settings is the cluster's health, which its list shows.
            obj.record_health(result.ok, result.message)
        return result

    def save(self, form):
        cluster = super().save(form)
        if self.save_check is not None:
            cluster.record_health(self.save_check.ok, self.save_check.message)
        return cluster


class ClusterDeleteView(ObjectDeleteView):
    model = Cluster

    def blocker(self, obj) -> str:
        if obj.lease_held():
            return (
                f"A reconcile of {obj.name} is running now. Delete the cluster again once it "
                "has finished (the status on its page says when)."
            )
        return ""


class ClusterStatusView(AdminRequiredMixin, View):
    def get(self, request, pk):
        cluster = get_object_or_404(Cluster, pk=pk)
        return render_status(
            request,
            cluster.targets.select_related("registry"),
            status_url=request.path,
            columns="cluster",
        )


class ReconcileRunListView(AdminRequiredMixin, View):
    """The cluster's recent reconciles alone, polled while one is queued or running."""

    def get(self, request, pk):
        context = reconciles_context(get_object_or_404(Cluster, pk=pk))
        poll = context["reconciles_poll"]
        return poll_response(request, not poll.active, {**context, "poll": poll})


class ClusterReconcileView(OperatorRequiredMixin, View):
    """ "Reconcile now": mark its targets pending and queue a reconcile."""

    def post(self, request, pk):
        cluster = get_object_or_404(Cluster, pk=pk)
        with transaction.atomic():
            pullsecrets.request_reconcile([cluster.pk], trigger=ReconcileRun.Trigger.MANUAL)
        messages.info(request, reconcile_message(cluster))
        return HttpResponseRedirect(cluster_page(request, cluster))


def cluster_page(request, cluster: Cluster) -> str:
    """Where a cluster's action sends the user back: its page for admins, the clusters list
    (all an operator sees of it) for operators."""
    if roles.allows(request.user, roles.ADMIN):
        return reverse("clusters:cluster_edit", args=[cluster.pk])
    return reverse("clusters:cluster_list") + f"#cluster-{cluster.pk}"


def reconcile_message(cluster: Cluster) -> str:
    """What "Reconcile now" tells the user: at once, after the running one, or after a takeover."""
    running = cluster.reconciles.filter(status=ReconcileRun.Status.RUNNING).first()
    if running is None:
        return f"Reconciling the pull secrets of {cluster}."
    since = timezone.localtime(running.started_at).strftime("%H:%M:%S")
    if running.lease_held():
        return (
            f"A reconcile of {cluster} is running (since {since}); yours runs as soon as it ends."
        )
    return (
        f"The reconcile of {cluster} that started at {since} stopped answering (its worker "
        "seems gone). Wharf closes it within a minute and then runs yours."
    )


# --- environments ----------------------------------------------------------------


class EnvironmentListView(ObjectListView):
    model = Environment
    queryset = Environment.objects.select_related("cluster")
    template_name = "clusters/environment_list.html"


class EnvironmentEditView(ObjectEditView):
    model = Environment
    form_class = EnvironmentForm
    template_name = "clusters/environment_form.html"

    def get_form(self, request, obj, data=None, files=None, initial=None):
        initial = dict(initial or {})
        cluster_id = id_param(request, "cluster")
        if obj.pk is None and cluster_id is not None:
            initial.setdefault("cluster", cluster_id)
        return super().get_form(request, obj, data, files, initial)

    def context(self, request, form, obj, **extra) -> dict:
        context = super().context(request, form, obj, **extra)
        context["has_clusters"] = Cluster.objects.exists()
        return context

    def success_url(self, saved) -> str:
        # Back to its cluster, where its environments are listed, not to the list.
        return reverse("clusters:cluster_edit", args=[saved.cluster_id]) + "#environments"


class EnvironmentDeleteView(ObjectDeleteView):
    model = Environment


# --- registry credential access ("Manage") -----------------------------------------


def get_private_registry_or_404(pk) -> Registry:
    """The registry behind a Manage URL; public registries inject nothing, so 404."""
    registry = get_object_or_404(Registry, pk=pk)
    if registry.is_public:
        raise Http404("A public registry has no credentials to inject.")
    return registry


def coverage_context(registry: Registry, data=None) -> dict:
    """What a rule covers now, per cluster: the saved rule, or the one on the form as the user
    edits it (``data``). From what reconciles recorded (the namespaces and their labels); a
    page view never asks a cluster."""
    error = ""
    if data is None or "mode" not in data:
        rule = RegistryAccess.objects.filter(registry=registry).first()
        rule = rule or RegistryAccess(registry=registry)
        chosen = None
    else:
        form = RegistryAccessForm(data, instance=RegistryAccess(registry=registry))
        form.is_valid()  # only to read the choices: nothing is saved
        rule, chosen = form.instance, form.cleaned_data.get("clusters") or []
        for name in ("namespace_selector", "excluded_namespaces"):
            if name in form.errors:
                error = form.errors[name][0]
    coverage = []
    if not error:
        clusters = rule.selected_clusters(chosen=chosen).order_by("name")
        coverage = pullsecrets.rule_coverage(rule, clusters)
    return {
        "coverage": coverage,
        "coverage_error": error,
        "coverage_rule": rule,
        "coverage_url": reverse("clusters:registryaccess_coverage", args=[registry.pk]),
    }


class RegistryAccessCoverageView(AdminRequiredMixin, View):
    """The preview alone, refreshed by htmx as the form is edited (reads only)."""

    def get(self, request, pk):
        registry = get_private_registry_or_404(pk)
        context = coverage_context(registry, request.GET)
        return render(request, "clusters/partials/_coverage_body.html", context)


class RegistryAccessView(AdminRequiredMixin, View):
    template_name = "clusters/registry_access.html"

    def render_page(self, request, registry, form, status=200):
        context = {
            **coverage_context(registry, form.data if form.is_bound else None),
            "registry": registry,
            "form": form,
            "access": RegistryAccess.objects.filter(registry=registry).first(),
            "has_clusters": Cluster.objects.exists(),
            "secret_name": pullsecrets.secret_name(registry),
            **status_context(
                registry.targets.select_related("cluster"),
                status_url=reverse("clusters:registryaccess_status", args=[registry.pk]),
                columns="registry",
            ),
        }
        return render(request, self.template_name, context, status=status)

    def get_access(self, registry) -> RegistryAccess:
        return RegistryAccess.objects.filter(registry=registry).first() or RegistryAccess(
            registry=registry
        )

    def get(self, request, pk):
        registry = get_private_registry_or_404(pk)
        access = self.get_access(registry)
        return self.render_page(request, registry, RegistryAccessForm(instance=access))

    def post(self, request, pk):
        registry = get_private_registry_or_404(pk)
        access = self.get_access(registry)
        creating = access.pk is None
        before = None if creating else audit.snapshot(access)
        before_clusters = [] if creating else sorted(c.name for c in access.clusters.all())
        affected = pullsecrets.clusters_of_registry(registry)
        form = RegistryAccessForm(request.POST, instance=access)
        if not form.is_valid():
            return self.render_page(request, registry, form, status=200)
        with transaction.atomic():
            access = form.save()
            after_clusters = sorted(c.name for c in access.clusters.all())
            changes = audit.diff(access, before or {}, audit.snapshot(access))
            if before_clusters != after_clusters:
                changes["clusters"] = [before_clusters, after_clusters]
            action = AuditEntry.Action.CREATE if creating else AuditEntry.Action.UPDATE
            audit.record(request.user, action, access, changes)
            affected |= set(access.selected_clusters().values_list("pk", flat=True))
            pullsecrets.request_reconcile(affected)
        messages.success(request, f"Saved the credential access of {registry}.")
        return HttpResponseRedirect(reverse("clusters:registryaccess_edit", args=[registry.pk]))


class RegistryAccessStatusView(AdminRequiredMixin, View):
    def get(self, request, pk):
        registry = get_object_or_404(Registry, pk=pk)
        return render_status(
            request,
            registry.targets.select_related("cluster"),
            status_url=request.path,
            columns="registry",
        )
