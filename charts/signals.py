"""A saved registry changes which chart sources exist (wired in ``ChartsConfig.ready``)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from charts.sources import sync_registry_sources
from registries.models import Registry


@receiver(post_save, sender=Registry, dispatch_uid="charts-registry-sources")
def registry_saved(sender, instance: Registry, raw: bool = False, **kwargs) -> None:
    if not raw:
        sync_registry_sources(instance)
