"""Chart Repositories (Helm) screens, chart source pages with their runs, and the Chart Store."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from charts.compare import chart_dependencies, values_diff
from charts.files import request_files
from charts.forms import ChartPushForm, HelmRepositoryForm, save_helm_repository
from charts.helmcheck import check_helm_repository
from charts.helmcommands import helm_commands
from charts.models import (
    Chart,
    ChartSource,
    ChartVersion,
    HelmRepository,
    SyncRun,
    TrustStatus,
)
from charts.push import push_refusal, request_push
from charts.search import BadCursor, store_page
from charts.semver import semver_key
from charts.sync import queue_sync
from charts.sync.writer import refresh_charts
from charts.uploads import PROVENANCE_MAX_BYTES, PushInputError
from config import audit, csp, roles
from config.badges import badge_of
from config.params import id_param, text_param
from config.views import (
    AdminRequiredMixin,
    ObjectDeleteView,
    ObjectEditView,
    ObjectListView,
    OperatorRequiredMixin,
    Polled,
    SignedInView,
    htmx_partial,
    poll_response,
)
from registries.models import Registry

RUNS_SHOWN = 20
VERSIONS_LISTED = 200
PUSHES_SHOWN = 50


# --- Chart Repositories (classic Helm) ------------------------------------------------


class HelmRepositoryScreen:
    model = HelmRepository
    screen_title = "Chart Repositories"


class HelmRepositoryListView(HelmRepositoryScreen, ObjectListView):
    queryset = HelmRepository.objects.select_related("source__last_run")
    template_name = "charts/repository_list.html"


class HelmRepositoryEditView(HelmRepositoryScreen, ObjectEditView):
    form_class = HelmRepositoryForm
    template_name = "charts/repository_form.html"

    def save(self, form):
        return save_helm_repository(form)

    def check_connection(self, obj):
        return check_helm_repository(obj)


class HelmRepositoryDeleteView(HelmRepositoryScreen, ObjectDeleteView):
    pass


# --- chart sources and their runs -----------------------------------------------------


class ChartSourceListView(ObjectListView):
    """Every source, with Sync now: operators see it too (read-only)."""

    required_role = roles.OPERATOR
    model = ChartSource
    queryset = ChartSource.objects.select_related("registry", "helm_repository", "last_run")
    template_name = "charts/source_list.html"

    def get_context(self, objects) -> dict:
        return {"sync_minutes": settings.WHARF_CHART_SYNC_INTERVAL // 60}


def runs_context(source: ChartSource, *, partial: bool = False) -> dict:
    """The source's recent runs, as a table that polls while one is queued or running.

    The table alone (``partial``, an htmx answer) also carries the number of charts in the
    store, swapped out of band into the page's header: so the count a run changes is up
    to date when the run's last poll shows it finished.
    """
    runs = list(source.runs.all()[:RUNS_SHOWN])
    # A run held back by the rate limit waits for minutes or hours: no polling meanwhile.
    going = any(not run.finished and not run.waiting_for_budget for run in runs)
    url = reverse("charts:chartsource_runs", args=[source.pk])
    return {
        "source": source,
        "runs": runs,
        "poll": Polled("runs", url, "charts/partials/_runs.html", active=going),
        "chart_count": source.charts.exclude(latest_version="").count(),
        "chart_count_oob": partial,
    }


def trust_counts(source: ChartSource) -> list[dict]:
    """How many of the source's versions (still upstream) have each trust status."""
    rows = (
        ChartVersion.objects.filter(chart__source=source, removed_upstream_at__isnull=True)
        .values("trust_status")
        .annotate(n=Count("pk"))
        .order_by("trust_status")
    )
    counts = []
    for row in rows:
        shown = ChartVersion(trust_status=row["trust_status"])
        label = badge_of(shown, "trust_status")
        counts.append({"badge": label, "text": f"{row['n']} {label.label.lower()}"})
    return counts


class ChartSourceView(OperatorRequiredMixin, View):
    def get(self, request, pk):
        source = get_object_or_404(
            ChartSource.objects.select_related("registry", "helm_repository"), pk=pk
        )
        context = {**runs_context(source), "trust_counts": trust_counts(source)}
        return render(request, "charts/source_detail.html", context)


class ChartSourceTrustView(AdminRequiredMixin, View):
    """The source's "Show only verified versions" setting (POST)."""

    def post(self, request, pk):
        source = get_object_or_404(ChartSource, pk=pk)
        wanted = request.POST.get("verified_only") == "1"
        if wanted != source.verified_only:
            before = audit.snapshot(source)
            with transaction.atomic():
                source.verified_only = wanted
                source.save(update_fields=["verified_only"])
                audit.record_save(request.user, source, before)
                refresh_charts(source.charts.values_list("pk", flat=True))
        shown = "only verified versions" if wanted else "every version"
        messages.success(request, f"The Chart Store shows {shown} of {source}.")
        return HttpResponseRedirect(source.get_absolute_url())


class ChartSourceRunsView(OperatorRequiredMixin, View):
    """The runs table alone, polled by htmx while a run is queued or running."""

    def get(self, request, pk):
        context = runs_context(get_object_or_404(ChartSource, pk=pk), partial=True)
        return poll_response(request, not context["poll"].active, context)


class ChartSourceSyncView(OperatorRequiredMixin, View):
    """ "Sync now" (and "Deep sync"): queue a run at once."""

    def post(self, request, pk):
        source = get_object_or_404(ChartSource, pk=pk)
        if not source.is_active:
            messages.error(request, f"{source} is not active; activate it to sync it.")
        else:
            with transaction.atomic():
                queue_sync(
                    source, trigger=SyncRun.Trigger.MANUAL, deep=request.POST.get("deep") == "1"
                )
            if not htmx_partial(request):  # the runs table shows it in place
                messages.success(request, f"Sync of {source} queued.")
        if htmx_partial(request):
            context = runs_context(source, partial=True)
            return poll_response(request, not context["poll"].active, context)
        return HttpResponseRedirect(source.get_absolute_url())


# --- pushing charts to a registry -----------------------------------------------------


def pushes_context(registry: Registry) -> dict:
    """The registry's latest pushes (without the bytes of those still waiting), as a table
    that polls while one is queued or running."""
    pushes = list(
        registry.chart_pushes.select_related("registry")
        .defer("archive", "provenance")
        .order_by("-queued_at", "-id")[:PUSHES_SHOWN]
    )
    going = any(not p.finished for p in pushes)
    url = reverse("charts:chartpush_list", args=[registry.pk])
    return {
        "registry": registry,
        "pushes": pushes,
        "poll": Polled("pushes", url, "charts/partials/_pushes.html", active=going),
    }


def get_pushable_registry_or_404(request, pk) -> Registry:
    """The registry of a push URL, if the user may push to it (a group's operators may be
    limited to some registries); 403 otherwise."""
    registry = get_object_or_404(Registry, pk=pk)
    if not roles.can_push(request.user, registry):
        raise PermissionDenied(
            f"You may not push charts to {registry}: your role's push is limited to other "
            "registries. Ask an admin to add it on the Roles screen."
        )
    return registry


def request_too_large(request) -> bool:
    """A push request whose body cannot hold an acceptable chart and provenance file."""
    length = request.META.get("CONTENT_LENGTH") or ""
    limit = settings.WHARF_CHART_PUSH_MAX_BYTES + PROVENANCE_MAX_BYTES + 64 * 1024  # + form
    return length.isdigit() and int(length) > limit


# The CSRF middleware reads request.POST, which stores the whole upload before any view
# code runs; this view checks the body's size first, then CSRF (see post()).
@method_decorator(csrf_exempt, name="dispatch")
class ChartPushView(OperatorRequiredMixin, View):
    """ "Push chart": upload a packaged chart to a registry with "Push helm packages"."""

    template_name = "charts/push.html"

    def render_page(self, request, registry, form, status=200, error=""):
        context = {
            **pushes_context(registry),
            "form": form,
            "refusal": push_refusal(registry),
            "max_bytes": settings.WHARF_CHART_PUSH_MAX_BYTES,
            "upload_error": error,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, pk):
        registry = get_pushable_registry_or_404(request, pk)
        return self.render_page(request, registry, ChartPushForm())

    def post(self, request, pk):
        registry = get_pushable_registry_or_404(request, pk)
        if push_refusal(registry):
            return self.render_page(request, registry, ChartPushForm(), status=409)
        if request_too_large(request):
            # Refused before Django spools a huge body to disk while parsing the upload.
            error = (
                f"The upload is {int(request.META['CONTENT_LENGTH']):,} bytes, more than the "
                f"{settings.WHARF_CHART_PUSH_MAX_BYTES:,} bytes a chart may be. Nothing was pushed."
            )
            return self.render_page(request, registry, ChartPushForm(), status=413, error=error)
        return self.checked_post(request, registry)

    @method_decorator(csrf_protect)
    def checked_post(self, request, registry):
        form = ChartPushForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_page(request, registry, form)
        try:
            push = request_push(
                registry, request.user, form.upload, overwrite=form.cleaned_data["overwrite"]
            )
        except PushInputError as exc:
            form.add_error(None, str(exc))
            return self.render_page(request, registry, form, status=409)
        messages.success(
            request, f"Push of {push.chart_name} {push.version} to {push.reference} queued."
        )
        return HttpResponseRedirect(reverse("charts:chartpush_add", args=[registry.pk]))


class ChartPushListView(OperatorRequiredMixin, View):
    """The pushes table alone, polled by htmx while a push is queued or running."""

    def get(self, request, pk):
        context = pushes_context(get_pushable_registry_or_404(request, pk))
        return poll_response(request, not context["poll"].active, context)


# --- Chart Store ----------------------------------------------------------------------


class ChartStoreView(SignedInView):
    """Every chart from every active source, for every signed-in user (charts/search.py:
    indexed search, keyset pages, a capped count)."""

    def get(self, request):
        query = text_param(request, "q", limit=100)
        source_id = id_param(request, "source")
        sources = list(ChartSource.objects.active().select_related("registry", "helm_repository"))
        shown = [s.pk for s in sources if source_id is None or s.pk == source_id]
        verified_only = request.GET.get("verified") == "1"
        cursor_error = ""
        try:
            page = store_page(
                query,
                shown,
                text_param(request, "cursor", limit=2000),
                verified_only=verified_only,
            )
        except BadCursor as exc:
            cursor_error = str(exc)
            page = store_page(query, shown, verified_only=verified_only)
        context = {
            "page": page,
            "query": query,
            "verified_only": verified_only,
            "source_id": str(source_id or ""),
            "sources": sources,
            "cursor_error": cursor_error,
        }
        template = (
            "charts/partials/_store_results.html" if htmx_partial(request) else "charts/store.html"
        )
        return allow_icons_from(render(request, template, context), sources)


def get_store_chart_or_404(pk) -> Chart:
    return get_object_or_404(
        Chart.objects.in_store().select_related("source__registry", "source__helm_repository"),
        pk=pk,
    )


def listed_versions(chart: Chart, *wanted: str) -> list[ChartVersion]:
    """The chart's versions still upstream, newest (SemVer) first; 404 when none is left.

    At most the :data:`VERSIONS_LISTED` most recently packaged, plus the chart's latest
    version and the ``wanted`` ones (a link to an older version still opens it): a chart
    with thousands of versions costs its page no more than one with a few hundred.
    """
    rows = chart.versions.filter(removed_upstream_at__isnull=True).only(
        "id", "version", "prerelease", "app_version", "created", "chart_id", "trust_status"
    )
    if chart.source.verified_only:  # the source shows only what a configured key verified
        rows = rows.filter(trust_status=TrustStatus.VERIFIED)
    versions = list(rows.order_by("-created", "-id")[:VERSIONS_LISTED])
    listed = {v.version for v in versions}
    missing = {v for v in (chart.latest_version, *wanted) if v and v not in listed}
    if missing:
        versions += rows.filter(version__in=missing)
    versions.sort(key=lambda v: semver_key(v.version), reverse=True)
    if not versions:  # every version went upstream between two queries
        raise Http404("This chart has no version left.")
    return versions


class ChartView(SignedInView):
    def get(self, request, pk):
        chart = get_store_chart_or_404(pk)
        wanted = text_param(request, "version", limit=255) or chart.latest_version
        versions = listed_versions(chart, wanted)
        chosen = next((v for v in versions if v.version == wanted), None)
        if chosen is None:
            chosen = next((v for v in versions if v.version == chart.latest_version), versions[0])
        selected = ChartVersion.objects.select_related(
            "chart__source__registry", "chart__source__helm_repository"
        ).get(pk=chosen.pk)
        context = {
            "chart": chart,
            "source": chart.source,
            "versions": versions,
            "versions_not_listed": max(chart.version_count - len(versions), 0),
            "selected": selected,
            "commands": helm_commands(chart, selected),
            "icon": chart.display_icon(selected.icon),
            "dependencies": chart_dependencies(selected.metadata),
        }
        return allow_icons_from(
            render(request, "charts/chart_detail.html", context), [chart.source]
        )


def allow_icons_from(response, sources):
    """Let the page load chart icons from the sources' own hosts (as Chart.display_icon
    allows them), and from nowhere else."""
    hosts = sorted({source.own_host for source in sources})
    return csp.allow(response, "img-src", [f"{s}://{h}" for h in hosts for s in ("https", "http")])


class ChartFilesView(SignedInView):
    """The README and values.yaml of one version, as read in the background.

    GET only reads: while the files wait for a worker the fragment polls itself, and stops
    (HTTP 286) once they are read or failed. POST ("Read now") asks for them.
    """

    template_name = "charts/partials/_chart_files.html"

    def get_version(self, pk, version_pk) -> ChartVersion:
        return get_object_or_404(
            ChartVersion.objects.in_store().select_related("chart"),
            pk=version_pk,
            chart_id=pk,
        )

    def render_files(self, request, version, message=""):
        context = {"selected": version, "message": message}
        done = version.files_state != "reading"
        return poll_response(request, done, context, template=self.template_name)

    def get(self, request, pk, version_pk):
        return self.render_files(request, self.get_version(pk, version_pk))

    def post(self, request, pk, version_pk):
        version = self.get_version(pk, version_pk)
        with transaction.atomic():
            message = request_files(version)
        version.refresh_from_db()
        if not request.htmx:
            messages.info(request, message)
            url = reverse("charts:chart_detail", args=[pk])
            return HttpResponseRedirect(f"{url}?{urlencode({'version': version.version})}")
        return self.render_files(request, version, message)


class ChartValuesDiffView(SignedInView):
    """values.yaml of two versions of one chart, compared (unified or side by side).

    Both files come from the background reads. GET only reads: a version whose files are
    not read yet is said so, with "Read now" (a POST) to ask for it, and the comparison
    polls itself until both are read.
    """

    template_name = "charts/values_diff.html"
    partial_name = "charts/partials/_values_diff.html"
    layouts = ("unified", "split")
    kept = ("from", "to", "layout")  # what a POST carries back to the comparison

    def choose(self, request, chart, versions):
        by_version = {v.version: v for v in versions}
        new = by_version.get(text_param(request, "to", limit=255) or chart.latest_version)
        new = new or versions[0]
        older = [v for v in versions if semver_key(v.version) < semver_key(new.version)]
        default_old = (older or [v for v in versions if v.pk != new.pk] or [new])[0]
        old = by_version.get(text_param(request, "from", limit=255)) or default_old
        return old, new

    def get(self, request, pk):
        chart = get_store_chart_or_404(pk)
        versions = listed_versions(
            chart, text_param(request, "from", limit=255), text_param(request, "to", limit=255)
        )
        old, new = self.choose(request, chart, versions)
        pair = {v.pk: v for v in ChartVersion.objects.filter(pk__in=[old.pk, new.pk])}
        old, new = pair[old.pk], pair[new.pk]
        layout = text_param(request, "layout", limit=10)
        layout = layout if layout in self.layouts else "unified"
        both_read = old.files_state == "read" and new.files_state == "read"
        query = urlencode({"from": old.version, "to": new.version, "layout": layout})
        context = {
            "chart": chart,
            "versions": versions,
            "old": old,
            "new": new,
            "layout": layout,
            "diff": values_diff(old.values_yaml, new.values_yaml) if both_read else None,
            "waiting": [v for v in (old, new) if v.files_state == "reading"],
            "unread": [v for v in (old, new) if v.files_state != "read"],
            "diff_url": f"{reverse('charts:chart_values_diff', args=[chart.pk])}?{query}",
        }
        if htmx_partial(request):
            done = not context["waiting"]
            return poll_response(request, done, context, template=self.partial_name)
        return render(request, self.template_name, context)

    def post(self, request, pk):
        """ "Read now" for one of the two versions; back to the comparison."""
        chart = get_store_chart_or_404(pk)
        posted = {k: request.POST.get(k, "").replace("\x00", "")[:255] for k in self.kept}
        version = (
            ChartVersion.objects.in_store()
            .filter(chart=chart, version=request.POST.get("version", "")[:255])
            .first()
        )
        if version is None:
            messages.error(request, "That version is not in the store (any more).")
        else:
            with transaction.atomic():
                messages.info(request, f"{version.version}: {request_files(version)}")
        query = {k: v for k, v in posted.items() if v}
        url = reverse("charts:chart_values_diff", args=[chart.pk])
        return HttpResponseRedirect(f"{url}?{urlencode(query)}")
