"""The cluster token and registry passwords never reach a page, the database in clear, or a log."""

import logging

import pytest
from django.db import connection
from django.urls import reverse

from clusters.pullsecrets import reconcile_cluster
from tests.clusters.factories import inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

CLUSTER_TOKEN = "cluster-bearer-token-4b1d-do-not-leak"
REGISTRY_PASSWORD = "registry-password-9c2e-do-not-leak"


def test_cluster_token_is_encrypted_at_rest(add_cluster):
    cluster, _fake = add_cluster("prod", token=CLUSTER_TOKEN)
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM clusters_cluster WHERE id = %s", [cluster.pk])
        stored = cursor.fetchone()[0]
    assert CLUSTER_TOKEN not in stored
    cluster.refresh_from_db()
    assert cluster.token == CLUSTER_TOKEN


def test_no_page_or_log_line_contains_the_cluster_token_or_registry_password(
    admin_client, add_cluster, caplog
):
    caplog.set_level(logging.DEBUG)
    cluster, fake = add_cluster("prod", token=CLUSTER_TOKEN)
    registry = RegistryFactory(name="acme", secret=REGISTRY_PASSWORD, is_default=True)
    inject(registry)
    reconcile_cluster(cluster.pk)
    assert fake.secret("team-a", "wharf-acme") is not None
    environment = cluster.environments.get()

    pages = [
        reverse("clusters:cluster_list"),
        reverse("clusters:cluster_edit", args=[cluster.pk]),
        reverse("clusters:cluster_delete", args=[cluster.pk]),
        reverse("clusters:cluster_status", args=[cluster.pk]),
        reverse("clusters:environment_list"),
        reverse("clusters:environment_edit", args=[environment.pk]),
        reverse("clusters:registryaccess_edit", args=[registry.pk]),
        reverse("clusters:registryaccess_status", args=[registry.pk]),
        reverse("registries:registry_list"),
        reverse("registries:registry_delete", args=[registry.pk]),
        reverse("config:auditentry_list"),
        "/admin/clusters/cluster/",
        f"/admin/clusters/cluster/{cluster.pk}/change/",
        "/admin/clusters/pullsecrettarget/",
        "/admin/clusters/registryaccess/",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert CLUSTER_TOKEN not in html, url
        assert REGISTRY_PASSWORD not in html, url
    # Test connection with a typed token echoes neither.
    test = admin_client.post(
        reverse("clusters:cluster_edit", args=[cluster.pk]),
        {"api_url": fake.url, "token": CLUSTER_TOKEN, "_action": "test"},
    )
    assert CLUSTER_TOKEN not in test.content.decode()
    assert CLUSTER_TOKEN not in caplog.text
    assert REGISTRY_PASSWORD not in caplog.text


def test_reprs_hold_no_secret(add_cluster):
    from clusters import kube, pullsecrets

    cluster, _fake = add_cluster("prod", token=CLUSTER_TOKEN)
    assert CLUSTER_TOKEN not in repr(cluster)
    assert CLUSTER_TOKEN not in repr(cluster.connection())
    login = pullsecrets.DockerLogin("host", "user", REGISTRY_PASSWORD)
    assert REGISTRY_PASSWORD not in repr(login)
    assert kube.Connection("https://x", CLUSTER_TOKEN).token == CLUSTER_TOKEN
