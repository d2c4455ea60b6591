"""The Celery app: workers do the slow work, beat runs the schedules in settings."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("wharf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def serve_metrics(**_: object) -> None:
    """With ``WHARF_WORKER_METRICS_PORT`` set, the worker serves its own ``/metrics`` (what
    its pool counts: runs, registry requests), for Prometheus to scrape each worker pod."""
    port = os.environ.get("WHARF_WORKER_METRICS_PORT")
    if port:
        from config.metrics import serve_worker_metrics

        serve_worker_metrics(int(port))
