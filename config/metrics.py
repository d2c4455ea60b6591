"""Prometheus metrics: what Wharf's processes count, and what its database holds.

Two kinds. **Events** (runs finished, requests to registries, rate limits) are counted in
the process where they happen, with prometheus-client; under several processes (gunicorn's
workers, a Celery worker's pool) set ``PROMETHEUS_MULTIPROC_DIR`` to a directory they share
and ``/metrics`` adds them up (prometheus-client's multiprocess mode). **State** (versions
indexed, pull-secret targets by status, ECR token expiry, queued runs) is read from the
database when ``/metrics`` is scraped, so it is right whichever process answers, and is
exported by the web only.

Label values are names users gave (sources, registries, clusters) or a short fixed set, so
a series never carries an id, a URL path, or a secret.
"""

from __future__ import annotations

import collections
import hmac
import logging
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config.health import ProbeView

log = logging.getLogger(__name__)
# No ``…_created`` series beside each counter and histogram (multiprocess mode has none
# either): the same names whichever way /metrics is served.
disable_created_metrics()

# --- events ---------------------------------------------------------------------------

RUNS = Counter(
    "wharf_runs_total", "Background runs finished, by kind and outcome.", ["kind", "outcome"]
)
SYNC_RUNS = Counter(
    "wharf_chart_sync_runs_total",
    "Chart sync runs finished, by chart source and outcome.",
    ["source", "outcome"],
)
SYNC_DURATION = Histogram(
    "wharf_chart_sync_duration_seconds",
    "How long chart sync runs took, by chart source.",
    ["source"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
PUSHES = Counter("wharf_chart_pushes_total", "Chart pushes finished, by outcome.", ["outcome"])
RECONCILES = Counter(
    "wharf_pull_secret_reconciles_total",
    "Pull-secret reconciles finished, by cluster and outcome.",
    ["cluster", "outcome"],
)
REQUESTS = Counter(
    "wharf_registry_requests_total",
    "HTTP requests to registries and Helm repositories, by server and kind of request.",
    ["registry", "kind"],
)
REQUEST_ERRORS = Counter(
    "wharf_registry_request_errors_total",
    "Requests to registries and Helm repositories that failed (no answer, or HTTP 4xx/5xx).",
    ["registry", "kind"],
)
RATE_LIMITED = Counter(
    "wharf_registry_rate_limited_total",
    "Answers that said to slow down (HTTP 429, or 503 with Retry-After), by server.",
    ["registry"],
)
RATE_LIMIT_WAIT = Counter(
    "wharf_registry_rate_limit_wait_seconds_total",
    "Seconds servers asked Wharf to wait (Retry-After); the source's next sync waits so long.",
    ["registry"],
)


def request_kind(url: str) -> str:
    """What a request to a registry or Helm repository was for, from its URL path."""
    path = urlsplit(url).path
    if path.rstrip("/") == "/v2":
        return "ping"
    if path.startswith("/v2/"):
        for marker, kind in (("/tags/list", "tags"), ("/manifests/", "manifest"),
                             ("/blobs/uploads", "upload"), ("/blobs/", "blob"),
                             ("/referrers/", "referrers")):  # fmt: skip
            if marker in path:
                return kind
        return "catalog" if path.startswith("/v2/_catalog") else "other"
    if path.endswith("index.yaml"):
        return "index"
    if path.endswith((".tgz", ".tar.gz")):
        return "archive"
    if path.endswith(".prov"):
        return "provenance"
    return "token" if "token" in path or "auth" in path else "other"


def request_done(server: str, url: str, status: int | None, retry_after: float | None) -> None:
    """Count one request (``status`` None: no answer came)."""
    try:
        kind = request_kind(url)
        REQUESTS.labels(server, kind).inc()
        if status is None or status >= 400:
            REQUEST_ERRORS.labels(server, kind).inc()
        if status == 429 or (status == 503 and retry_after is not None):
            RATE_LIMITED.labels(server).inc()
            if retry_after:
                RATE_LIMIT_WAIT.labels(server).inc(retry_after)
    except Exception:  # metrics never break the work they count
        log.debug("could not count a request", exc_info=True)


def run_finished(kind: str, subject: Any, outcome: str, seconds: float) -> None:
    try:
        RUNS.labels(kind, outcome).inc()
        name = str(subject) if subject is not None else ""
        if kind == "chart sync":
            SYNC_RUNS.labels(name, outcome).inc()
            SYNC_DURATION.labels(name).observe(seconds)
        elif kind == "chart push":
            PUSHES.labels(outcome).inc()
        elif kind == "pull-secret reconcile":
            RECONCILES.labels(name, outcome).inc()
    except Exception:
        log.debug("could not count a run", exc_info=True)


# --- state, read from the database at scrape time ----------------------------------------


class StateCollector(Collector):
    """Gauges of what the database holds, computed when Prometheus scrapes."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count, Min

        from charts.models import ChartSource, ChartVersion
        from clusters.models import PullSecretTarget, RegistryAccess
        from clusters.pullsecrets import expiry_warning, reconcile_interval
        from config.runs import RunStatus, run_models

        versions = GaugeMetricFamily(
            "wharf_chart_versions",
            "Chart versions in the Chart Store, by source.",
            labels=["source"],
        )
        counts = dict(
            ChartVersion.objects.values_list("chart__source").annotate(n=Count("pk")).order_by()
        )
        sources = ChartSource.objects.filter(pk__in=counts).select_related(
            "registry", "helm_repository"
        )
        for label, n in sorted((str(source), counts[source.pk]) for source in sources):
            versions.add_metric([label], n)
        yield versions

        targets = GaugeMetricFamily(
            "wharf_pull_secret_targets",
            "Pull-secret targets (cluster, namespace, registry), by cluster and status.",
            labels=["cluster", "status"],
        )
        rows = PullSecretTarget.objects.values("cluster__name", "status").annotate(n=Count("pk"))
        clusters_with_targets = set()
        for row in rows.order_by("cluster__name", "status"):
            targets.add_metric([row["cluster__name"], row["status"]], row["n"])
            clusters_with_targets.add(row["cluster__name"])
        yield targets

        now = timezone.now()
        expiring = GaugeMetricFamily(
            "wharf_pull_secret_targets_expiring",
            "Pull-secret targets whose credential expires within two reconcile intervals "
            "with no renewal due (the status table says why), by cluster.",
            labels=["cluster"],
        )
        soon = PullSecretTarget.objects.filter(
            expires_at__lt=now + 2 * reconcile_interval()
        ).select_related("cluster", "registry")
        counted = collections.Counter(t.cluster.name for t in soon if expiry_warning(t, now))
        for name in sorted(clusters_with_targets | set(counted)):
            expiring.add_metric([name], counted[name])
        yield expiring

        expiry = GaugeMetricFamily(
            "wharf_ecr_token_expiry_seconds",
            "Seconds until the ECR token in use for a registry expires (negative: expired).",
            labels=["registry"],
        )
        tokens = (
            RegistryAccess.objects.filter(ecr_token_expires_at__isnull=False)
            .values("registry__name")
            .annotate(first=Min("ecr_token_expires_at"))
        )
        for token in tokens.order_by("registry__name"):
            expiry.add_metric([token["registry__name"]], (token["first"] - now).total_seconds())
        yield expiry

        yield from _rate_limit_budgets()

        waiting = GaugeMetricFamily(
            "wharf_runs_queued", "Runs waiting for a worker, by kind.", labels=["kind"]
        )
        age = GaugeMetricFamily(
            "wharf_run_queue_age_seconds",
            "Seconds the oldest run of each kind has waited for a worker (0: none waits).",
            labels=["kind"],
        )
        for model in run_models():
            queued = model._default_manager.filter(status=RunStatus.QUEUED)
            summary = queued.aggregate(n=Count("pk"), oldest=Min("queued_at"))
            waiting.add_metric([model.kind], summary["n"])
            oldest = summary["oldest"]
            age.add_metric([model.kind], (now - oldest).total_seconds() if oldest else 0.0)
        yield waiting
        yield age


def _rate_limit_budgets() -> Iterator[GaugeMetricFamily]:
    """What each registry last said of its rate limit (registries.budgets)."""
    from registries.models import RateLimitBudget

    remaining = GaugeMetricFamily(
        "wharf_registry_rate_limit_remaining",
        "Requests a registry's rate limit had left when it last answered, by registry.",
        labels=["registry"],
    )
    limit = GaugeMetricFamily(
        "wharf_registry_rate_limit_limit",
        "A registry's rate limit (requests per window), by registry.",
        labels=["registry"],
    )
    rows = RateLimitBudget.objects.values_list("registry__name", "remaining", "limit")
    for name, left, most in rows.order_by("registry__name"):
        if left is not None:
            remaining.add_metric([name], left)
        if most is not None:
            limit.add_metric([name], most)
    yield remaining
    yield limit


def exposition() -> bytes:
    """The text of ``/metrics``: every process's events, and the database's state."""
    registry = _process_registry()
    registry.register(StateCollector())
    return generate_latest(registry)


def _authorised(request: HttpRequest) -> bool:
    token = settings.WHARF_METRICS_TOKEN
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


class MetricsView(ProbeView):
    """``/metrics`` in Prometheus's text format; with ``WHARF_METRICS_TOKEN`` set, only for
    ``Authorization: Bearer <token>`` (Prometheus's ``authorization`` / a ServiceMonitor's
    ``bearerTokenSecret``)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not _authorised(request):
            response = HttpResponse("A bearer token is needed for /metrics.\n", status=401,
                                    content_type="text/plain")  # fmt: skip
            response["WWW-Authenticate"] = 'Bearer realm="wharf-metrics"'
            return response
        response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
        response["Cache-Control"] = "no-store"
        return response


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: a dead worker's live gauges stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


# --- a worker's own endpoint -------------------------------------------------------------


def _process_registry() -> CollectorRegistry:
    """Every process's counters on this host (multiprocess mode), else this process's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in list(REGISTRY._collector_to_names):
            registry.register(collector)
    return registry


def worker_metrics_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The WSGI app of a Celery worker's ``/metrics``: the events its pool counted (the
    database's state is the web's to export), behind the same optional bearer token."""
    token = settings.WHARF_METRICS_TOKEN  # from WHARF_METRICS_TOKEN(_FILE)
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Only /metrics is here.\n"]
    scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if token and not (scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)):
        challenge = ("WWW-Authenticate", 'Bearer realm="wharf-metrics"')
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), challenge])
        return [b"A bearer token is needed for /metrics.\n"]
    body = generate_latest(_process_registry())
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")])
    return [body]


def serve_worker_metrics(port: int, host: str = "0.0.0.0") -> Any:  # noqa: S104 (a pod's port)
    """Serve :func:`worker_metrics_app` on ``host:port`` from a daemon thread; the server."""
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
            pass

    server = make_server(host, port, worker_metrics_app, Server, QuietHandler)
    threading.Thread(target=server.serve_forever, name="wharf-metrics", daemon=True).start()
    log.info("Worker metrics on http://%s:%s/metrics", host, port)
    return server
