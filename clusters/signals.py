"""Saves that change the desired pull secrets queue a reconcile of the clusters concerned."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from clusters import pullsecrets
from clusters.models import Cluster, Environment, PullSecretTarget, RegistryAccess
from registries.models import Registry

# What a registry's pull secret is made of (its name, server key and credentials)...
REGISTRY_CREDENTIAL_FIELDS = (
    "name",
    "provider",
    "registry_type",
    "url",
    "auth_type",
    "username",
    "secret",
)
# ...and how Wharf reaches AWS for an ECR token (a fixed proxy may cure a failed target).
REGISTRY_RECONCILE_FIELDS = (
    *REGISTRY_CREDENTIAL_FIELDS,
    "connection_method",
    "proxy_url",
    "proxy_username",
    "proxy_password",
)


@receiver(pre_save, sender=Registry)
def registry_saving(sender, instance: Registry, raw=False, **kwargs) -> None:
    old = None if raw or instance.pk is None else Registry.objects.filter(pk=instance.pk).first()
    instance._pull_secret_changes = {
        name
        for name in REGISTRY_RECONCILE_FIELDS
        if old is None or getattr(old, name) != getattr(instance, name)
    }
    if old is not None and instance._pull_secret_changes & set(REGISTRY_CREDENTIAL_FIELDS):
        # What the secrets carry until the reconcile: kept beside the new credentials a while.
        instance._previous_login = pullsecrets.login_in_use(old)


@receiver(post_save, sender=Registry)
def registry_saved(sender, instance: Registry, raw=False, **kwargs) -> None:
    # Only saves that change what its pull secrets hold (or whether Wharf can build them)
    # queue a reconcile: flipping "Push helm packages" must not rewrite every secret.
    changed = getattr(instance, "_pull_secret_changes", set(REGISTRY_RECONCILE_FIELDS))
    if raw or not changed:
        return
    if changed & set(REGISTRY_CREDENTIAL_FIELDS):
        pullsecrets.record_credential_change(instance, getattr(instance, "_previous_login", None))
    pullsecrets.request_reconcile(pullsecrets.clusters_of_registry(instance))


@receiver(pre_delete, sender=Registry)
def registry_deleting(sender, instance: Registry, **kwargs) -> None:
    instance._pull_secret_clusters = pullsecrets.clusters_of_registry(instance)


@receiver(post_delete, sender=Registry)
def registry_deleted(sender, instance: Registry, **kwargs) -> None:
    # Its status rows went with it; the reconcile removes its now unwanted secrets.
    pullsecrets.request_reconcile(getattr(instance, "_pull_secret_clusters", ()))


@receiver(post_delete, sender=RegistryAccess)
def registry_access_deleted(sender, instance: RegistryAccess, **kwargs) -> None:
    # A rule deleted (in the admin, say): its secrets go where they are now.
    clusters = PullSecretTarget.objects.filter(registry_id=instance.registry_id)
    pullsecrets.request_reconcile(clusters.values_list("cluster_id", flat=True))


# How Wharf reaches a cluster, and whether it may: what a reconcile there depends on.
CLUSTER_RECONCILE_FIELDS = ("api_url", "token", "ca_certificate", "skip_tls_verify", "active")


@receiver(pre_save, sender=Cluster)
def cluster_saving(sender, instance: Cluster, raw=False, **kwargs) -> None:
    old = None if raw or instance.pk is None else Cluster.objects.filter(pk=instance.pk).first()
    instance._reconcile_changed = old is None or any(
        getattr(old, name) != getattr(instance, name) for name in CLUSTER_RECONCILE_FIELDS
    )


@receiver(post_save, sender=Cluster)
def cluster_saved(sender, instance: Cluster, raw=False, update_fields=None, **kwargs) -> None:
    if not raw and getattr(instance, "_reconcile_changed", True):
        pullsecrets.request_reconcile([instance.pk])


@receiver(pre_delete, sender=Cluster)
def cluster_deleting(sender, instance: Cluster, **kwargs) -> None:
    pullsecrets.remove_cluster_secrets(instance)


@receiver(pre_save, sender=Environment)
def environment_saving(sender, instance: Environment, **kwargs) -> None:
    old = Environment.objects.filter(pk=instance.pk).values_list("cluster_id", "namespace").first()
    instance._previous_place = old  # (cluster, namespace), None when new


@receiver(post_save, sender=Environment)
def environment_saved(sender, instance: Environment, raw=False, **kwargs) -> None:
    previous = getattr(instance, "_previous_place", None)
    if raw or previous == (instance.cluster_id, instance.namespace):
        return  # a new name only: the pull secrets stay as they are
    previous_cluster = previous[0] if previous else None
    pullsecrets.request_reconcile({instance.cluster_id, previous_cluster} - {None})


@receiver(post_delete, sender=Environment)
def environment_deleted(sender, instance: Environment, **kwargs) -> None:
    # Once committed: an environment deleted with its cluster has no cluster to reconcile
    # then (and a run queued for it now would point at a row about to go).
    cluster_id = instance.cluster_id

    def reconcile_if_still_there() -> None:
        pullsecrets.request_reconcile(
            Cluster.objects.filter(pk=cluster_id).values_list("pk", flat=True)
        )

    transaction.on_commit(reconcile_if_still_there)
