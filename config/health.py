"""Health probes for load balancers and Kubernetes: ``/healthz`` and ``/readyz``.

Both answer without sign-in, in milliseconds, and say nothing but "ok" or "not ok" and which
check failed (no versions, hosts, or error texts: the probe is reachable by anyone).

- ``/healthz``: the process is up and serving (a liveness probe).
- ``/readyz``: the database answers, every migration is applied, and the broker takes
  connections (a readiness probe: a process that fails it gets no traffic).
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View

log = logging.getLogger(__name__)

# Migrations, once all applied, stay applied for the life of the process.
_migrated = False


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError as exc:
        log.warning("Readiness: the database does not answer: %s", exc)
        return False


def migrations_ok() -> bool:
    global _migrated
    if _migrated:
        return True
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        log.warning("Readiness: migrations could not be read: %s", exc)
        return False
    _migrated = not plan
    if plan:
        log.warning("Readiness: %d migrations are not applied yet", len(plan))
    return _migrated


def broker_ok() -> bool:
    from config.celery import app

    try:
        with app.connection_for_write(connect_timeout=1) as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # every transport raises its own kind
        log.warning("Readiness: the broker does not take connections: %s", exc)
        return False
    return True


CHECKS = {"database": database_ok, "migrations": migrations_ok, "broker": broker_ok}


@method_decorator(login_not_required, name="dispatch")
class ProbeView(View):
    """A probe: for anyone (load balancers do not sign in), GET and HEAD only."""

    required_role = "probe"
    http_method_names = ["get", "head"]


class HealthView(ProbeView):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"status": "ok"})


class ReadinessView(ProbeView):
    def get(self, request: HttpRequest) -> JsonResponse:
        checks = {}
        for name, check in CHECKS.items():
            checks[name] = "ok" if check() else "not ok"
            if checks[name] != "ok" and name == "database":
                checks["migrations"] = "not ok"  # cannot be known without the database
                break
        ready = all(result == "ok" for result in checks.values())
        body = {"status": "ok" if ready else "not ok", "checks": checks}
        return JsonResponse(body, status=200 if ready else 503)
