"""Saves that change the desired pull secrets queue a reconcile of the clusters concerned."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from clusters import pullsecrets
from clusters.models import Cluster, Environment, RegistryAccess
from registries.models import Registry


@receiver(post_save, sender=Registry)
def registry_saved(sender, instance: Registry, **kwargs) -> None:
    # New credentials may mean a new ECR token: drop the kept one.
    RegistryAccess.objects.filter(registry=instance).update(ecr_token="", ecr_token_expires_at=None)
    pullsecrets.request_reconcile(pullsecrets.clusters_of_registry(instance))


@receiver(pre_delete, sender=Registry)
def registry_deleting(sender, instance: Registry, **kwargs) -> None:
    instance._pull_secret_clusters = pullsecrets.clusters_of_registry(instance)


@receiver(post_delete, sender=Registry)
def registry_deleted(sender, instance: Registry, **kwargs) -> None:
    # Its status rows went with it; the reconcile removes its now unwanted secrets.
    pullsecrets.request_reconcile(getattr(instance, "_pull_secret_clusters", ()))


@receiver(post_save, sender=Cluster)
def cluster_saved(sender, instance: Cluster, raw=False, update_fields=None, **kwargs) -> None:
    if not raw:
        pullsecrets.request_reconcile([instance.pk])


@receiver(pre_delete, sender=Cluster)
def cluster_deleting(sender, instance: Cluster, **kwargs) -> None:
    pullsecrets.remove_cluster_secrets(instance)


@receiver(pre_save, sender=Environment)
def environment_saving(sender, instance: Environment, **kwargs) -> None:
    old = Environment.objects.filter(pk=instance.pk).values_list("cluster_id", flat=True).first()
    instance._previous_cluster_id = old


@receiver(post_save, sender=Environment)
def environment_saved(sender, instance: Environment, raw=False, **kwargs) -> None:
    if not raw:
        previous = getattr(instance, "_previous_cluster_id", None)
        pullsecrets.request_reconcile({instance.cluster_id, previous} - {None})


@receiver(post_delete, sender=Environment)
def environment_deleted(sender, instance: Environment, **kwargs) -> None:
    if Cluster.objects.filter(pk=instance.cluster_id).exists():
        pullsecrets.request_reconcile([instance.cluster_id])
