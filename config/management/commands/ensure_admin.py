"""Create the first superuser, ``admin``, once.

The password comes from ``WHARF_ADMIN_PASSWORD``; without it one is generated and
printed this one time (it is stored only as a hash).
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from config.settings import env as settings_env


class Command(BaseCommand):
    help = "Create the superuser 'admin' if no superuser exists yet."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser exists already; nothing to do.")
            return
        # Read now, not at start-up, and from WHARF_ADMIN_PASSWORD_FILE too (a mounted Secret).
        password = settings_env.str("WHARF_ADMIN_PASSWORD", default="")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(16)
        User.objects.create_superuser("admin", email="", password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    "Created superuser 'admin' with the generated password below. "
                    "It is shown only this once:\n\n    " + password + "\n"
                )
            )
        else:
            self.stdout.write(
                "Created superuser 'admin' with the password from WHARF_ADMIN_PASSWORD."
            )
