"""``runserver`` for development only: with ``DEBUG`` off it refuses to start.

Django's development server is neither secure nor built for load; production serves the
web with gunicorn (``config/gunicorn.py``, the image's ``web`` entry point).
"""

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver
from django.core.management.base import CommandError


class Command(StaticRunserver):
    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "runserver is Django's development server and only runs with DEBUG=1. "
                "In production serve Wharf with gunicorn: `gunicorn -c config/gunicorn.py` "
                "(the image's `web` entry point, or scripts/run-all.sh with DEBUG=0)."
            )
        return super().handle(*args, **options)
