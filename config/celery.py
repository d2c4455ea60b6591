"""The Celery app: workers do the slow work, beat runs the schedules in settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("wharf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
