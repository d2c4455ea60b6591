"""Every delete page has the breadcrumb Home > list > object > Delete."""

import re

import pytest
from django.urls import reverse

from charts.models import HelmRepository
from tests.clusters.factories import ClusterFactory, EnvironmentFactory
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def crumbs(html: str) -> list[tuple[str, str]]:
    """(href or "", text) of each breadcrumb item."""
    nav = re.search(r'<nav aria-label="breadcrumb">(.*?)</nav>', html, re.S).group(1)
    items = re.findall(r'<li class="breadcrumb-item[^"]*"[^>]*>(.*?)</li>', nav, re.S)
    found = []
    for item in items:
        link = re.search(r'<a href="([^"]*)">(.*?)</a>', item, re.S)
        found.append((link.group(1), link.group(2)) if link else ("", item.strip()))
    return found


@pytest.mark.parametrize("screen", ["registry", "helmrepository", "cluster", "environment"])
def test_a_delete_page_has_the_breadcrumb_home_list_object_delete(admin_client, screen):
    obj, namespace, title = {
        "registry": (lambda: RegistryFactory(name="acme"), "registries", "Container/OCI Registry"),
        "helmrepository": (
            lambda: HelmRepository.objects.create(name="acme", url="https://c.example.com"),
            "charts",
            "Chart Repositories",
        ),
        "cluster": (lambda: ClusterFactory(name="acme", active=False), "clusters", "Clusters"),
        "environment": (lambda: EnvironmentFactory(name="acme"), "clusters", "Environments"),
    }[screen]
    obj = obj()

    html = admin_client.get(reverse(f"{namespace}:{screen}_delete", args=[obj.pk])).content.decode()

    assert crumbs(html) == [
        (reverse("home"), "Home"),
        (reverse(f"{namespace}:{screen}_list"), title),
        (reverse(f"{namespace}:{screen}_edit", args=[obj.pk]), "acme"),
        ("", "Delete"),
    ]
