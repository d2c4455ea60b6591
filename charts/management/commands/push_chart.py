"""``manage.py push_chart REGISTRY CHART.tgz``: push a packaged chart from a pipeline.

The same checks and the same push as the "Push chart" page, run in this process (no
worker needed); the push is recorded on the registry page like any other, and the audit
log names who ran it: ``--as USER`` (a Wharf user, who must be allowed to push to the
registry: an operator or admin, within their group's push limits), else the OS user
("push_chart by os:ci"; whoever may run manage.py may push anywhere).
Exits non-zero with the reason when the upload is refused or the push fails.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from charts.models import ChartPush
from charts.push import request_push, run_push
from charts.uploads import PushInputError, max_push_bytes, prepare_push
from config import audit, roles
from registries.models import Registry


class Command(BaseCommand):
    help = "Push a packaged Helm chart (.tgz) to a registry with “Push helm packages” ticked."

    def add_arguments(self, parser):
        parser.add_argument("registry", help="The registry's name in Wharf.")
        parser.add_argument("chart", help="Path of the chart archive (.tgz).")
        parser.add_argument("--prov", help="Path of the provenance file (.prov).")
        parser.add_argument("--prefix", default="", help="Repository prefix, e.g. charts.")
        parser.add_argument(
            "--as",
            dest="operator",
            metavar="USER",
            help="The Wharf user the push is recorded for (default: the OS user, as os:NAME).",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="Replace the version if the registry holds it with different content.",
        )

    def handle(self, *args, **options):
        try:
            registry = Registry.objects.get(name=options["registry"])
        except Registry.DoesNotExist:
            raise CommandError(f"No registry named {options['registry']!r}.") from None
        user, operator = self.operator(options["operator"])
        if user is not None and not roles.can_push(user, registry):
            raise CommandError(
                f"{operator} may not push charts to {registry}: that needs the operator or "
                "admin role, with this registry among their group's push registries."
            )
        archive = self.read(options["chart"], max_push_bytes())
        provenance = self.read(options["prov"], max_push_bytes()) if options["prov"] else b""
        try:
            upload = prepare_push(archive, provenance, options["prefix"])
            with audit.acting_as(f"push_chart by {operator}"):
                push = request_push(
                    registry, user, upload, overwrite=options["overwrite"], enqueue=False
                )
        except PushInputError as exc:
            raise CommandError(str(exc)) from None
        push = run_push(push.pk)
        if push is None or push.status != ChartPush.Status.SUCCEEDED:
            raise CommandError(push.error if push else "The push disappeared.")
        self.stdout.write(f"{push.reference}:{push.tag}")
        self.stdout.write(f"Digest: {push.manifest_digest}")
        self.stdout.write(push.note)

    def operator(self, username: str | None) -> tuple:
        """(the Wharf user named with --as, or None; who ran it, as the audit log says)."""
        if username is None:
            try:
                return None, f"os:{getpass.getuser()}"
            except (KeyError, OSError):  # a uid without a name, in a container
                return None, "os:unknown"
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        return user, user.get_username()

    def read(self, path: str, limit: int) -> bytes:
        file = Path(path)
        try:
            size = file.stat().st_size
            if size > limit:  # refused before it is read into memory
                raise CommandError(f"{path} is {size:,} bytes, more than the {limit:,} allowed.")
            return file.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
