"""Re-encrypt every stored secret with the first key of WHARF_ENCRYPTION_KEYS.

Rotation: put a new key first in WHARF_ENCRYPTION_KEYS (keep the old ones after it),
restart, run this command, then drop the old keys.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from config.crypto import EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt all stored secrets with the newest encryption key."

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            fields = [
                f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)
            ]
            if not fields:
                continue
            with transaction.atomic():
                for obj in model._default_manager.select_for_update().iterator():
                    # Reading decrypts with any key; saving encrypts with the first.
                    model._default_manager.filter(pk=obj.pk).update(
                        **{name: getattr(obj, name) for name in fields}
                    )
                    total += 1
        self.stdout.write(f"Re-encrypted the secrets of {total} objects with the newest key.")
