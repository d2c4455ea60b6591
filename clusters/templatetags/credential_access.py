"""The registry list's "Credential access" column, for every row in a few queries."""

from django import template

from clusters.models import Cluster, RegistryAccess

register = template.Library()


@register.simple_tag
def credential_access_summaries(registries) -> dict:
    """Registry pk -> its credential access summary (a private registry without a rule: "")."""
    ids = [r.pk for r in registries if not r.is_public]
    if not ids:
        return {}
    active = set(Cluster.objects.filter(active=True).values_list("pk", flat=True))
    rules = RegistryAccess.objects.filter(registry__in=ids).prefetch_related("clusters")
    return {rule.registry_id: rule.summary(active) for rule in rules}


@register.filter
def summary_of(summaries: dict, registry) -> str:
    return summaries.get(registry.pk, "")
