"""What starts trust checks: a sync that indexed versions, and a change of signing keys."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from charts.sync.run import sync_finished, versions_indexed
from trust import check
from trust.models import SigningKey


@receiver(versions_indexed, dispatch_uid="trust-after-sync")
def versions_were_indexed(sender, **kwargs) -> None:
    check.queue_checks()


@receiver(sync_finished, dispatch_uid="trust-signature-tags")
def sync_was_finished(sender, run, **kwargs) -> None:
    if run.status == "succeeded" and check.notice_signature_tags(run.source):
        check.queue_checks()


@receiver(post_save, sender=SigningKey, dispatch_uid="trust-key-saved")
def key_saved(sender, instance: SigningKey, created: bool, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    before = getattr(instance, "_loaded", None) or {}
    ids = list(instance.key_ids or []) + list(before.get("key_ids") or [])
    check.recheck_for_key(kind=instance.kind, key_ids=ids, name=before.get("name", ""))
    if before.get("kind") and before["kind"] != instance.kind:
        check.recheck_for_key(kind=before["kind"], key_ids=ids, name=before.get("name", ""))
    instance.remember_loaded()


@receiver(post_delete, sender=SigningKey, dispatch_uid="trust-key-deleted")
def key_deleted(sender, instance: SigningKey, **kwargs) -> None:
    check.recheck_for_key(
        kind=instance.kind, key_ids=list(instance.key_ids or []), name=instance.name
    )
