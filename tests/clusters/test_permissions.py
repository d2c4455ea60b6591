"""Every cluster, environment and credential access URL: anonymous, plain user, superuser."""

import pytest
from django.urls import reverse

from clusters.models import Cluster, Environment, RegistryAccess
from tests.clusters.factories import EnvironmentFactory, inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

# (method, url name, which object's pk it takes)
PAGES = [
    ("get", "clusters:cluster_list", None),
    ("get", "clusters:cluster_add", None),
    ("post", "clusters:cluster_add", None),
    ("get", "clusters:cluster_edit", "cluster"),
    ("post", "clusters:cluster_edit", "cluster"),
    ("get", "clusters:cluster_delete", "cluster"),
    ("post", "clusters:cluster_delete", "cluster"),
    ("get", "clusters:cluster_status", "cluster"),
    ("post", "clusters:cluster_reconcile", "cluster"),
    ("get", "clusters:environment_list", None),
    ("get", "clusters:environment_add", None),
    ("post", "clusters:environment_add", None),
    ("get", "clusters:environment_edit", "environment"),
    ("post", "clusters:environment_edit", "environment"),
    ("get", "clusters:environment_delete", "environment"),
    ("post", "clusters:environment_delete", "environment"),
    ("get", "clusters:registryaccess_edit", "registry"),
    ("post", "clusters:registryaccess_edit", "registry"),
    ("get", "clusters:registryaccess_status", "registry"),
]


@pytest.fixture
def objects():
    environment = EnvironmentFactory(cluster__api_url="http://127.0.0.1:9")
    registry = RegistryFactory(is_default=True)
    inject(registry, clusters=[environment.cluster])
    return {"cluster": environment.cluster, "environment": environment, "registry": registry}


def url_of(name, kind, objects):
    return reverse(name, args=[objects[kind].pk] if kind else [])


def unchanged(objects) -> bool:
    return (
        Cluster.objects.filter(pk=objects["cluster"].pk).exists()
        and Environment.objects.filter(pk=objects["environment"].pk).exists()
        and RegistryAccess.objects.count() == 1
    )


@pytest.mark.parametrize(("method", "name", "kind"), PAGES)
def test_anonymous_is_sent_to_sign_in(client, objects, method, name, kind):
    response = getattr(client, method)(url_of(name, kind, objects))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert unchanged(objects)


@pytest.mark.parametrize(("method", "name", "kind"), PAGES)
def test_plain_user_gets_a_clear_403_and_changes_nothing(user_client, objects, method, name, kind):
    response = getattr(user_client, method)(url_of(name, kind, objects))

    assert response.status_code == 403
    assert "Only superusers" in response.content.decode()
    assert unchanged(objects)


@pytest.mark.parametrize(("name", "kind"), [(n, k) for m, n, k in PAGES if m == "get"])
def test_superuser_sees_every_page(admin_client, objects, name, kind):
    assert admin_client.get(url_of(name, kind, objects)).status_code == 200


def test_plain_user_sees_no_cluster_links_in_the_navigation(user_client):
    html = user_client.get(reverse("home")).content.decode()
    assert reverse("clusters:cluster_list") not in html
